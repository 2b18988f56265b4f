"""Small helpers for how services show stored values to the API and the event payloads."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    """An aware datetime as ISO 8601 (with its offset), or None."""
    return value.isoformat() if value else None
