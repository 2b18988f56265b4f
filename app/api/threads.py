"""/api/v1/threads: the conversations, their states and timelines."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import ContextDep, UserDep
from app.api.schemas import Problem, ThreadDetail, ThreadPage
from app.domain.model import ThreadState
from app.services import threads as service

router = APIRouter(prefix="/threads", tags=["threads"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    422: {"model": Problem},
}


@router.get("", response_model=ThreadPage, responses=ERRORS)
async def list_threads(
    ctx: ContextDep,
    user: UserDep,
    mailbox_id: int | None = None,
    state: ThreadState | None = None,
    limit: int = Query(50, ge=1, le=service.MAX_PAGE),
    cursor: str | None = Query(None, max_length=200),
) -> dict[str, Any]:
    """Threads, newest first; follow `next_cursor` for the next page."""
    items, next_cursor = await service.list_threads(
        ctx, user_id=user.id, mailbox_id=mailbox_id, state=state, limit=limit, cursor=cursor
    )
    return {"items": items, "next_cursor": next_cursor}


@router.get("/{thread_id}", response_model=ThreadDetail, responses=ERRORS)
async def get_thread(thread_id: int, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """One thread with its timeline, oldest message first, each with its kind and why."""
    return await service.get_thread(ctx, user_id=user.id, thread_id=thread_id)
