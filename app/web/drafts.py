"""/drafts: the follow-ups waiting for review; /drafts/{id}: exactly what will land in the
Drafts folder, the question to edit or swap, and approve, dismiss or snooze."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.errors import Conflict, InvalidInput, MailServerError
from app.services import drafts as service
from app.services import overview
from app.services.drafts import Delivery
from app.services.suggestions import suggested_questions
from app.web.deps import Ctx, Form, PageUser, row_id, text
from app.web.render import redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/drafts")
async def draft_list(request: Request, ctx: Ctx, user: PageUser) -> HTMLResponse:
    cursor = request.query_params.get("cursor") or None
    items, next_cursor = await service.list_drafts(
        ctx, user_id=user.id, state="pending", limit=50, cursor=cursor
    )
    return render(request, "pages/drafts.html", {"items": items, "next_cursor": next_cursor})


async def _page(
    request: Request, ctx: Ctx, user_id: int, draft_id: int, *, error: str = "", status: int = 200
) -> HTMLResponse:
    page = await overview.draft_page(ctx, user_id=user_id, draft_id=row_id(draft_id))
    suggestions = await suggested_questions(ctx, user_id=user_id, draft_id=draft_id)
    return render(
        request,
        "pages/draft.html",
        {"page": page, "suggestions": suggestions, "error": error},
        status_code=status,
    )


@router.get("/drafts/{draft_id}")
async def draft_detail(request: Request, draft_id: int, ctx: Ctx, user: PageUser) -> Response:
    return await _page(request, ctx, user.id, draft_id)


async def _save_question(ctx: Ctx, user_id: int, draft_id: int, question: str) -> None:
    current = await service.get_draft(ctx, user_id=user_id, draft_id=draft_id)
    if question.strip() and question.strip() != (current.question or "").strip():
        await service.edit_draft(ctx, user_id=user_id, draft_id=draft_id, question=question)


@router.post("/drafts/{draft_id}/question")
async def save_question(
    request: Request, draft_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    try:
        await _save_question(ctx, user.id, row_id(draft_id), text(form, "question"))
    except (InvalidInput, Conflict) as exc:
        return await _page(request, ctx, user.id, draft_id, error=exc.message, status=422)
    return redirect(f"/drafts/{draft_id}", "saved")


@router.post("/drafts/{draft_id}/approve")
async def approve(
    request: Request, draft_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    """The question as the rep left it in the form is saved first, then approved: what they
    saw is what lands in the Drafts folder."""
    delivery: Delivery = "smtp" if text(form, "delivery") == "smtp" else "imap_draft"
    try:
        await _save_question(ctx, user.id, row_id(draft_id), text(form, "question"))
        done = await service.approve_draft(
            ctx, user_id=user.id, draft_id=draft_id, delivery=delivery
        )
    except (InvalidInput, Conflict, MailServerError) as exc:
        return await _page(request, ctx, user.id, draft_id, error=exc.message, status=409)
    notice = {"smtp": "sent", "download": "downloaded"}.get(str(done.delivery), "approved")
    return redirect(f"/drafts/{draft_id}", notice)


@router.post("/drafts/{draft_id}/dismiss")
async def dismiss(
    request: Request, draft_id: int, ctx: Ctx, form: Form, user: PageUser
) -> Response:
    reason = text(form, "reason").strip() or None
    try:
        await service.dismiss_draft(ctx, user_id=user.id, draft_id=row_id(draft_id), reason=reason)
    except Conflict as exc:
        return await _page(request, ctx, user.id, draft_id, error=exc.message, status=409)
    return redirect("/", "dismissed")


@router.post("/drafts/{draft_id}/snooze")
async def snooze(request: Request, draft_id: int, ctx: Ctx, form: Form, user: PageUser) -> Response:
    draft = await service.get_draft(ctx, user_id=user.id, draft_id=row_id(draft_id))
    try:
        until = await overview.morning_of(
            ctx, user_id=user.id, mailbox_id=draft.mailbox_id, day=text(form, "until")
        )
        await service.snooze_draft(ctx, user_id=user.id, draft_id=draft_id, until=until)
    except (InvalidInput, Conflict) as exc:
        return await _page(request, ctx, user.id, draft_id, error=exc.message, status=422)
    return redirect("/", "snoozed")


@router.get("/drafts/{draft_id}/eml")
async def download(draft_id: int, ctx: Ctx, user: PageUser) -> Response:
    raw = await service.raw_draft(ctx, user_id=user.id, draft_id=row_id(draft_id))
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'attachment; filename="follow-up-{draft_id}.eml"'},
    )
