"""/api/v1/events: the event log, with the same payloads as the webhooks."""

from __future__ import annotations

from fastapi import APIRouter, Query

from app.api.deps import MAX_ID, ContextDep, UserDep
from app.api.schemas import EventOut, EventPage, Problem
from app.services import events as service

router = APIRouter(prefix="/events", tags=["events"])


@router.get("", response_model=EventPage, responses={401: {"model": Problem}})
async def list_events(
    ctx: ContextDep,
    user: UserDep,
    after: int | None = Query(None, ge=0, le=MAX_ID, description="Only events after this id"),
    limit: int = Query(100, ge=1, le=1000),
) -> EventPage:
    """Oldest first. Pass the last id you saw as `after` (or follow `next_cursor`)."""
    items = await service.list_events(ctx, user_id=user.id, after=after, limit=limit)
    next_cursor = str(items[-1].id) if len(items) == limit else None
    return EventPage(
        items=[EventOut(id=e.id, type=e.type, timestamp=e.timestamp, data=e.data) for e in items],
        next_cursor=next_cursor,
    )
