"""The event log and transactional outbox: events are written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import utcnow
from app.storage.tables import events


async def enqueue(
    conn: AsyncConnection,
    *,
    user_id: int,
    type: str,
    payload: dict[str, Any],
    mailbox_id: int | None = None,
    thread_id: int | None = None,
) -> int:
    result = await conn.execute(
        insert(events)
        .values(
            user_id=user_id,
            mailbox_id=mailbox_id,
            thread_id=thread_id,
            type=type,
            payload=payload,
            created_at=utcnow(),
        )
        .returning(events.c.id)
    )
    return int(result.scalar_one())


async def list_events(
    conn: AsyncConnection, *, user_id: int, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(events).where(events.c.user_id == user_id)
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    query = query.order_by(events.c.id).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]
