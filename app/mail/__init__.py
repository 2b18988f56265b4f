"""The edge to mail servers and mail files."""
