"""The REST API under /api/v1: routers parse, call a service, and shape the answer. No SQL."""
