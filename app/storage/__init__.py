"""Persistence: the schema, the engine, and one query module per topic. SQL lives only here."""
