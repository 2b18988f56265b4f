"""The rep's own e-mails of mailboxes imported from a file, kept whole so that a follow-up
can forward one (an IMAP mailbox fetches it from the server instead and keeps nothing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import bulk_insert
from app.storage.tables import message_originals, messages

_IN_CHUNK = 500  # keys per IN (…): far below SQLite's limit on bound parameters


async def keep_originals(
    conn: AsyncConnection, *, mailbox_id: int, originals: Mapping[str, bytes], now: datetime
) -> int:
    """Keep the bytes of the stored messages named by their `message_key`, once: a message
    kept already (an import run again) is left as it is, and its bytes are not even sent to
    the database. Returns how many were added."""
    keys = list(originals)
    missing: list[tuple[int, str]] = []
    for start in range(0, len(keys), _IN_CHUNK):
        chunk = keys[start : start + _IN_CHUNK]
        query = (
            select(messages.c.id, messages.c.message_key)
            .outerjoin(message_originals, message_originals.c.message_id == messages.c.id)
            .where(
                messages.c.mailbox_id == mailbox_id,
                messages.c.message_key.in_(chunk),
                message_originals.c.message_id.is_(None),
            )
        )
        missing.extend((int(r.id), str(r.message_key)) for r in await conn.execute(query))
    await bulk_insert(
        conn,
        message_originals,
        [{"message_id": mid, "raw": originals[key], "created_at": now} for mid, key in missing],
        ignore_conflicts_on=["message_id"],
    )
    return len(missing)


async def originals_of_messages(
    conn: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, bytes]:
    """The kept bytes by message id (messages without any are left out)."""
    out: dict[int, bytes] = {}
    for start in range(0, len(message_ids), _IN_CHUNK):
        chunk = list(message_ids[start : start + _IN_CHUNK])
        query = select(message_originals.c.message_id, message_originals.c.raw).where(
            message_originals.c.message_id.in_(chunk)
        )
        out.update({int(r.message_id): bytes(r.raw) for r in await conn.execute(query)})
    return out
