"""Python values as the database drivers bind them: JSON text, dates, flags. No SQLAlchemy
here: a first sync's reader process encodes its rows with these (`storage.message_rows`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def json_value(value: Any) -> str | None:
    """What the JSON column type would store, without its per-row machinery."""
    if value is None:
        return None
    if not value and isinstance(value, list | tuple):
        return "[]"  # most address and reference lists are empty: skip the encoder
    return _json(value)


def json_strings(items: Sequence[str]) -> str:
    """A JSON list of strings, exactly as `json_value` writes it but several times faster."""
    if not items:
        return "[]"
    return "[" + ",".join(map(encode_basestring, items)) + "]"


def json_string_map(items: Mapping[str, str]) -> str:
    """A JSON object of strings, exactly as `json_value` writes it."""
    pairs = [encode_basestring(k) + ":" + encode_basestring(v) for k, v in items.items()]
    return "{" + ",".join(pairs) + "}"


def _sqlite_time(value: datetime | None) -> str | None:
    # Exactly SQLAlchemy's SQLite DATETIME text, so that stored values compare as strings.
    if value is None:
        return None
    if value.tzinfo is not UTC:  # parsed dates are UTC already: skip the conversion
        value = value.astimezone(UTC)
    # Faster than isoformat() on an aware datetime, which formats its offset too.
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


def _pg_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def driver_time(dialect: str) -> Callable[[datetime | None], Any]:
    """How an aware datetime goes to the driver of `dialect` (SQLAlchemy's dialect name):
    SQLite text or a UTC datetime."""
    return _pg_time if dialect == "postgresql" else _sqlite_time


def driver_flag(dialect: str) -> Callable[[bool], Any]:
    """How a boolean goes to the driver. sqlite3 binds a plain int several times faster than
    a bool (which it first looks up adapters for); asyncpg wants a real bool."""
    return bool if dialect == "postgresql" else int
