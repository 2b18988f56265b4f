"""Keyset paging shared by the paginated lists: opaque cursors (threads, drafts) and the page
split of every list, webhook deliveries included.

A cursor is the last id of a page, tagged with what it pages through, so that a thread
cursor handed to the drafts list is refused instead of silently skipping rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from app.errors import InvalidInput

MAX_ROW_ID = 2**63 - 1  # ids are BIGINT
T = TypeVar("T")


def split_page(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """Rows read with `limit + 1`: the page, and whether another page follows (so that a
    last page that is exactly full hands out no cursor to an empty one)."""
    return list(rows[:limit]), len(rows) > limit


def encode_cursor(kind: str, last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str) -> int:
    """The id a page ends at; InvalidInput (a 400/422) for anything we did not hand out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, _, value = raw.partition(":")
        if tag != kind:
            raise ValueError(tag)
        last_id = int(value)
        if not 0 < last_id <= MAX_ROW_ID:  # a forged one must not reach the database
            raise ValueError(value)
        return last_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "invalid cursor: pass the next_cursor of a previous page unchanged"
        ) from None
