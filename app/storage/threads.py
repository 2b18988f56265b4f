"""Thread rows: listing with keyset pagination, the timeline, and what is due for the rules."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import utcnow
from app.storage.tables import folders, message_locations, messages, threads


async def list_threads(
    conn: AsyncConnection,
    *,
    user_id: int,
    mailbox_id: int | None,
    state: str | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest threads first; `before_id` is the keyset cursor (ids only grow)."""
    query = select(threads).where(threads.c.user_id == user_id, threads.c.state.is_not(None))
    if mailbox_id is not None:
        query = query.where(threads.c.mailbox_id == mailbox_id)
    if state is not None:
        query = query.where(threads.c.state == state)
    if before_id is not None:
        query = query.where(threads.c.id < before_id)
    query = query.order_by(threads.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_thread(
    conn: AsyncConnection, thread_id: int, *, user_id: int
) -> dict[str, Any] | None:
    query = select(threads).where(threads.c.id == thread_id, threads.c.user_id == user_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def message_ids_by_thread(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[str]]:
    """Each thread's Message-IDs, oldest first (synthetic keys are not Message-IDs: skipped)."""
    out: dict[int, list[str]] = defaultdict(list)
    if not thread_ids:
        return out
    query = (
        select(messages.c.thread_id, messages.c.message_key)
        .where(messages.c.thread_id.in_(thread_ids), messages.c.has_message_id)
        .order_by(messages.c.thread_id, messages.c.date, messages.c.id)
    )
    for thread_id, key in await conn.execute(query):
        out[int(thread_id)].append(key)
    return out


async def messages_of_threads(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """Full message rows per thread, oldest first."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not thread_ids:
        return out
    query = (
        select(messages)
        .where(messages.c.thread_id.in_(thread_ids))
        .order_by(messages.c.thread_id, messages.c.date, messages.c.id)
    )
    for row in (await conn.execute(query)).mappings():
        out[int(row["thread_id"])].append(dict(row))
    return out


async def folders_of_messages(
    conn: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not message_ids:
        return out
    query = (
        select(message_locations.c.message_id, folders.c.name)
        .join(folders, folders.c.id == message_locations.c.folder_id)
        .where(message_locations.c.message_id.in_(message_ids))
        .order_by(folders.c.name)
    )
    for message_id, name in await conn.execute(query):
        if name not in out[int(message_id)]:
            out[int(message_id)].append(name)
    return out


async def threads_to_evaluate(
    conn: AsyncConnection, *, now: datetime, mailbox_id: int | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Threads with new mail (dirty) or whose time has come (next_check_at); indexed lookups."""
    query = (
        select(threads)
        .where(or_(threads.c.dirty, threads.c.next_check_at <= now))
        .order_by(threads.c.id)
        .limit(limit)
    )
    if mailbox_id is not None:
        query = query.where(threads.c.mailbox_id == mailbox_id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def save_decision(conn: AsyncConnection, thread_id: int, values: dict[str, Any]) -> None:
    await conn.execute(
        update(threads)
        .where(threads.c.id == thread_id)
        .values(**values, dirty=False, updated_at=utcnow())
    )
