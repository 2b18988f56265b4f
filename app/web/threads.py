"""/threads: lists with filters and pages; /threads/{id}: the timeline and what the rep can
do by hand (snooze, close, reopen, "answered elsewhere")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.domain.model import ThreadState
from app.errors import InvalidInput
from app.services import followups, overview
from app.services import thread_actions as actions
from app.services.paging import MAX_ROW_ID
from app.web.deps import Ctx, Form, PageUser, row_id, text
from app.web.render import redirect, render

router = APIRouter(include_in_schema=False)


def _state(value: str | None) -> ThreadState | None:
    if not value:
        return None
    try:
        return ThreadState(value)
    except ValueError:
        raise InvalidInput(f"unknown state {value[:40]!r}") from None


def _mailbox(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 0 < int(value) <= MAX_ROW_ID:
        raise InvalidInput("mailbox must be a mailbox's id")
    return int(value)


@router.get("/threads")
async def thread_list(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    q = request.query_params
    state = _state(q.get("state"))
    owed = q.get("needs_response") == "1"
    mailbox_id = _mailbox(q.get("mailbox"))
    page = await overview.thread_list(
        ctx,
        user_id=user.id,
        state=state,
        needs_response=True if owed else None,
        mailbox_id=mailbox_id,
        cursor=q.get("cursor") or None,
    )
    return render(
        request,
        "pages/threads.html",
        {
            "page": page,
            "state": state.value if state else "",
            "owed": owed,
            "mailbox_id": mailbox_id,
            "mailboxes": page.mailboxes,
            "states": [s.value for s in overview.STATE_ORDER],
        },
    )


@router.get("/threads/{thread_id}")
async def thread_detail(request: Request, thread_id: int, ctx: Ctx, user: PageUser) -> HTMLResponse:
    # A quiet thread's missing draft is composed now (a few seconds at most), so that the
    # page can link to it; otherwise it says the draft is being prepared.
    wait = await followups.draft_on_demand(ctx, user_id=user.id, thread_id=row_id(thread_id))
    page = await overview.thread_page(ctx, user_id=user.id, thread_id=row_id(thread_id))
    return render(
        request, "pages/thread.html", {"page": page, "error": "", "draft_blocked": wait.blocked}
    )


@router.post("/threads/{thread_id}/snooze")
async def snooze(thread_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    until = await overview.snooze_time(
        ctx, user_id=user.id, thread_id=row_id(thread_id), day=text(form, "until")
    )
    await actions.snooze(ctx, user_id=user.id, thread_id=thread_id, until=until)
    return redirect(f"/threads/{thread_id}", "snoozed")


@router.post("/threads/{thread_id}/close")
async def close(thread_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    reason = text(form, "reason").strip()[:500] or None
    await actions.close(ctx, user_id=user.id, thread_id=row_id(thread_id), reason=reason)
    return redirect(f"/threads/{thread_id}", "closed")


@router.post("/threads/{thread_id}/reopen")
async def reopen(thread_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    await actions.reopen(ctx, user_id=user.id, thread_id=row_id(thread_id))
    return redirect(f"/threads/{thread_id}", "reopened")


@router.post("/threads/{thread_id}/answered")
async def answered(thread_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    note = text(form, "note").strip()[:1000] or "answered outside e-mail"
    await actions.answered(ctx, user_id=user.id, thread_id=row_id(thread_id), note=note)
    return redirect(f"/threads/{thread_id}", "answered")
