"""The event log and transactional outbox: events are written in the caller's transaction.

The events are fanned out, in that same transaction, to one webhook delivery per subscription
that wants it: a state change, its event and its deliveries commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage import webhooks
from app.storage.common import allocate_ids, utcnow
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
    created_at = utcnow()
    result = await conn.execute(
        insert(events)
        .values(
            user_id=user_id,
            mailbox_id=mailbox_id,
            thread_id=thread_id,
            type=type,
            payload=payload,
            created_at=created_at,
        )
        .returning(events.c.id)
    )
    event_id = int(result.scalar_one())
    await webhooks.fan_out(
        conn, [{"event_id": event_id, "user_id": user_id, "type": type, "created_at": created_at}]
    )
    return event_id


async def list_events(
    conn: AsyncConnection, *, user_id: int, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    query = select(events).where(events.c.user_id == user_id)
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    query = query.order_by(events.c.id).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def enqueue_many(conn: AsyncConnection, items: Sequence[dict[str, Any]]) -> list[int]:
    """`enqueue` for a batch (the scheduler's): one INSERT for all the events, then one
    fan-out of them all. Each item has user_id, type, payload, mailbox_id and thread_id."""
    if not items:
        return []
    created_at = utcnow()
    ids = await allocate_ids(conn, events, len(items))
    await conn.execute(
        insert(events),
        [
            {
                "id": event_id,
                "user_id": item["user_id"],
                "mailbox_id": item.get("mailbox_id"),
                "thread_id": item.get("thread_id"),
                "type": item["type"],
                "payload": item["payload"],
                "created_at": created_at,
            }
            for event_id, item in zip(ids, items, strict=True)
        ],
    )
    await webhooks.fan_out(
        conn,
        [
            {
                "event_id": event_id,
                "user_id": item["user_id"],
                "type": item["type"],
                "created_at": created_at,
            }
            for event_id, item in zip(ids, items, strict=True)
        ],
    )
    return ids
