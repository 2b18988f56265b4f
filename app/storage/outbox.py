"""The event log and transactional outbox: events are written in the caller's transaction.

The events are fanned out, in that same transaction, to one webhook delivery per subscription
that wants it: a state change, its event and its deliveries commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import cheap_init
from app.storage import webhooks
from app.storage.common import allocate_ids, insert_rows, time_value
from app.storage.tables import events
from app.storage.values import json_value


@cheap_init  # a baseline's end writes tens of thousands
@dataclass(frozen=True, kw_only=True)
class NewEvent:
    """An event to write (see `enqueue_many`)."""

    user_id: int
    type: str
    payload: dict[str, Any]  # the webhook body's JSON: its shape is the event type's
    mailbox_id: int | None = None
    thread_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRow:
    """An `events` row."""

    id: int
    user_id: int
    mailbox_id: int | None
    thread_id: int | None
    type: str
    payload: dict[str, Any]  # the webhook body's JSON: its shape is the event type's
    created_at: datetime


async def enqueue(
    conn: AsyncConnection,
    *,
    user_id: int,
    type: str,
    payload: dict[str, Any],  # the webhook body's JSON: its shape is the event type's
    now: datetime,
    mailbox_id: int | None = None,
    thread_id: int | None = None,
) -> int:
    created_at = now
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
) -> list[EventRow]:
    query = select(events).where(events.c.user_id == user_id)
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    query = query.order_by(events.c.id).limit(limit)
    return [EventRow(**r._mapping) for r in await conn.execute(query)]  # columns match


_EVENT_COLUMNS = ("id", "user_id", "mailbox_id", "thread_id", "type", "payload", "created_at")


async def enqueue_many(
    conn: AsyncConnection, items: Sequence[NewEvent], *, now: datetime
) -> list[int]:
    """`enqueue` for a batch (the scheduler's): one INSERT for all the events, then one
    fan-out of them all."""
    if not items:
        return []
    created_at = now
    ids = await allocate_ids(conn, events, len(items))
    stamp = time_value(conn.dialect)(created_at)
    # As driver tuples: a baseline's end writes tens of thousands of events at once.
    await insert_rows(
        conn,
        events,
        _EVENT_COLUMNS,
        [
            (
                event_id,
                item.user_id,
                item.mailbox_id,
                item.thread_id,
                item.type,
                json_value(item.payload),
                stamp,
            )
            for event_id, item in zip(ids, items, strict=True)
        ],
    )
    await webhooks.fan_out(
        conn,
        [
            {
                "event_id": event_id,
                "user_id": item.user_id,
                "type": item.type,
                "created_at": created_at,
            }
            for event_id, item in zip(ids, items, strict=True)
        ],
    )
    return ids
