"""Use cases shared by the API, pages, CLI and workers: one function, one transaction."""
