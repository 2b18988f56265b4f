"""/api/v1/threads: the conversations, their states and timelines."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from app.api.deps import MAX_ID, ContextDep, RowId, UserDep
from app.api.schemas import (
    AnsweredBody,
    CloseBody,
    MessageOut,
    Problem,
    SnoozeBody,
    ThreadDetail,
    ThreadOut,
    ThreadPage,
)
from app.domain.model import ThreadState
from app.services import thread_actions as actions
from app.services import threads as service
from app.services.threads import ThreadView

router = APIRouter(prefix="/threads", tags=["threads"])
# FastAPI's `responses`: OpenAPI fragments, an open JSON shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}


@router.get("", response_model=ThreadPage, responses=ERRORS)
async def list_threads(
    ctx: ContextDep,
    user: UserDep,
    mailbox_id: int | None = Query(None, ge=1, le=MAX_ID),
    state: ThreadState | None = None,
    limit: int = Query(50, ge=1, le=service.MAX_PAGE),
    cursor: str | None = Query(None, max_length=200),
) -> ThreadPage:
    """Threads, newest first; follow `next_cursor` for the next page."""
    items, next_cursor = await service.list_threads(
        ctx, user_id=user.id, mailbox_id=mailbox_id, state=state, limit=limit, cursor=cursor
    )
    return ThreadPage(items=[_out(v) for v in items], next_cursor=next_cursor)


@router.get("/{thread_id}", response_model=ThreadDetail, responses=ERRORS)
async def get_thread(thread_id: RowId, ctx: ContextDep, user: UserDep) -> ThreadDetail:
    """One thread with its timeline, oldest message first, each with its kind and why."""
    view = await service.get_thread(ctx, user_id=user.id, thread_id=thread_id)
    return ThreadDetail(
        **_out(view.thread).model_dump(),
        messages=[MessageOut.model_validate(m, from_attributes=True) for m in view.messages],
    )


@router.post("/{thread_id}/snooze", response_model=ThreadOut, responses=ERRORS)
async def snooze_thread(
    thread_id: RowId, body: SnoozeBody, ctx: ContextDep, user: UserDep
) -> ThreadOut:
    """Set the thread aside until `until` (a future time); the rules look again then."""
    return _out(await actions.snooze(ctx, user_id=user.id, thread_id=thread_id, until=body.until))


@router.post("/{thread_id}/close", response_model=ThreadOut, responses=ERRORS)
async def close_thread(
    thread_id: RowId, ctx: ContextDep, user: UserDep, body: CloseBody | None = None
) -> ThreadOut:
    """Stop watching the thread (`thread.closed`), with an optional reason."""
    reason = body.reason if body else None
    return _out(await actions.close(ctx, user_id=user.id, thread_id=thread_id, reason=reason))


@router.post("/{thread_id}/reopen", response_model=ThreadOut, responses=ERRORS)
async def reopen_thread(thread_id: RowId, ctx: ContextDep, user: UserDep) -> ThreadOut:
    """Watch a closed, snoozed or bounced thread again, counting from now."""
    return _out(await actions.reopen(ctx, user_id=user.id, thread_id=thread_id))


@router.post("/{thread_id}/answered", response_model=ThreadOut, responses=ERRORS)
async def answered_thread(
    thread_id: RowId, body: AnsweredBody, ctx: ContextDep, user: UserDep
) -> ThreadOut:
    """They answered outside e-mail ("they called", "we met"): the thread is replied, with
    your note as the reason. Writing to them again later restarts the wait."""
    return _out(await actions.answered(ctx, user_id=user.id, thread_id=thread_id, note=body.note))


def _out(view: ThreadView) -> ThreadOut:
    return ThreadOut.model_validate(view, from_attributes=True)
