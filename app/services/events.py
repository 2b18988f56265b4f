"""The event log as integrators read it."""

from __future__ import annotations

from typing import Any

from app.services.context import Context
from app.storage import outbox
from app.storage.engine import reading
from app.storage.outbox import EventRow


def event_view(row: EventRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "type": row.type,
        "timestamp": row.created_at.isoformat(),
        "data": row.payload,
    }


async def list_events(
    ctx: Context, *, user_id: int, after: int | None, limit: int
) -> list[dict[str, Any]]:
    async with reading(ctx.engine) as conn:
        rows = await outbox.list_events(conn, user_id=user_id, after_id=after, limit=limit)
    return [event_view(r) for r in rows]
