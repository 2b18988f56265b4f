"""Use cases shared by the API, the pages, the CLI and the workers: one function, one transaction."""
