"""/api/v1/drafts: review follow-up drafts; /api/v1/mailboxes/{id}/draft-templates and
…/draft-settings: a mailbox's questions and how its drafts are delivered."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Response

from app.api.deps import MAX_ID, ContextDep, RowId, UserDep
from app.api.schemas import (
    DraftApprove,
    DraftDetail,
    DraftDismiss,
    DraftOut,
    DraftPage,
    DraftPatch,
    DraftSettingsIn,
    DraftSettingsOut,
    DraftSnooze,
    DraftTemplatesIn,
    DraftTemplatesOut,
    Problem,
)
from app.errors import InvalidInput
from app.services import draft_settings, followups
from app.services import drafts as service
from app.services.followups import DraftView

router = APIRouter(tags=["drafts"])
ERRORS: dict[int | str, dict[str, Any]] = {  # OpenAPI fragments: their shape is open
    401: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}
DraftState = Literal["pending", "approved", "dismissed", "snoozed"]


@router.get("/drafts", response_model=DraftPage, responses=ERRORS)
async def list_drafts(
    ctx: ContextDep,
    user: UserDep,
    response: Response,
    thread_id: int | None = Query(None, ge=1, le=MAX_ID),
    mailbox_id: int | None = Query(None, ge=1, le=MAX_ID),
    state: DraftState | None = None,
    limit: int = Query(50, ge=1, le=service.MAX_PAGE),
    cursor: str | None = Query(None, max_length=200),
) -> DraftPage:
    """Drafts, newest first; follow `next_cursor` for the next page. A snoozed draft whose
    time has come is listed as pending again. With `thread_id` of a quiet thread whose
    follow-up draft is not composed yet, it is composed now; when that takes longer than a
    few seconds (fetching your e-mail from the mail server), the answer says `preparing`
    and when to ask again (`retry_after`, also the Retry-After header); when its mailbox
    cannot be read now, `blocked` says so in plain words."""
    wait = followups.READY
    if thread_id is not None and cursor is None:
        wait = await followups.draft_on_demand(ctx, user_id=user.id, thread_id=thread_id)
    preparing = wait.preparing
    if preparing:
        response.headers["Retry-After"] = str(followups.PREPARING_RETRY_SECONDS)
    items, next_cursor = await service.list_drafts(
        ctx,
        user_id=user.id,
        thread_id=thread_id,
        mailbox_id=mailbox_id,
        state=state,
        limit=limit,
        cursor=cursor,
    )
    return DraftPage(
        items=[_out(item) for item in items],
        next_cursor=next_cursor,
        preparing=preparing,
        retry_after=followups.PREPARING_RETRY_SECONDS if preparing else None,
        blocked=wait.blocked,
    )


@router.get("/drafts/{draft_id}", response_model=DraftDetail, responses=ERRORS)
async def get_draft(draft_id: RowId, ctx: ContextDep, user: UserDep) -> DraftDetail:
    """One draft with its text: the question, then your forwarded e-mail."""
    view = await service.get_draft(ctx, user_id=user.id, draft_id=draft_id)
    return DraftDetail.model_validate(view, from_attributes=True)


@router.get(
    "/drafts/{draft_id}/raw",
    responses={**ERRORS, 200: {"content": {"message/rfc822": {}}}},
    response_class=Response,
)
async def get_raw_draft(draft_id: RowId, ctx: ContextDep, user: UserDep) -> Response:
    """The draft as the RFC 5322 message that goes into your Drafts folder (for a mailbox
    imported from a file: the .eml to open in your mail client)."""
    raw = await service.raw_draft(ctx, user_id=user.id, draft_id=draft_id)
    return Response(
        raw,
        media_type="message/rfc822",
        headers={"Content-Disposition": f'inline; filename="draft-{draft_id}.eml"'},
    )


@router.patch("/drafts/{draft_id}", response_model=DraftOut, responses=ERRORS)
async def edit_draft(draft_id: RowId, body: DraftPatch, ctx: ContextDep, user: UserDep) -> DraftOut:
    """Change the question, or rewrite the whole text (`body`). An approved draft goes back
    to pending; approving it again replaces the copy in your Drafts folder."""
    given = body.model_fields_set
    if "question" in given and body.question is None:
        raise InvalidInput("question must not be null")
    view = await service.edit_draft(
        ctx,
        user_id=user.id,
        draft_id=draft_id,
        question=body.question if "question" in given else service.UNSET,
        body=body.body if "body" in given else service.UNSET,
    )
    return _out(view)


@router.post("/drafts/{draft_id}/approve", response_model=DraftOut, responses=ERRORS)
async def approve_draft(
    draft_id: RowId, ctx: ContextDep, user: UserDep, body: DraftApprove | None = None
) -> DraftOut:
    """Put the draft into your Drafts folder (`imap_draft`, the default), or send it
    (`smtp`, when the mailbox has SMTP set up). The mailbox is read first: when a reply came
    in meanwhile, the answer is 409 with the thread's new state. Approving twice makes one.
    A mailbox imported from a file has no server: the draft is recorded approved with
    `"delivery": "download"`, to be downloaded from `/raw` (`smtp` is a 409 there)."""
    delivery = body.delivery if body else "imap_draft"
    return _out(
        await service.approve_draft(ctx, user_id=user.id, draft_id=draft_id, delivery=delivery)
    )


@router.post("/drafts/{draft_id}/dismiss", response_model=DraftOut, responses=ERRORS)
async def dismiss_draft(
    draft_id: RowId, ctx: ContextDep, user: UserDep, body: DraftDismiss | None = None
) -> DraftOut:
    """Not this one. The reason, if you give one, is kept for tuning the rules."""
    reason = body.reason if body else None
    return _out(await service.dismiss_draft(ctx, user_id=user.id, draft_id=draft_id, reason=reason))


@router.post("/drafts/{draft_id}/snooze", response_model=DraftOut, responses=ERRORS)
async def snooze_draft(
    draft_id: RowId, ctx: ContextDep, user: UserDep, body: DraftSnooze | None = None
) -> DraftOut:
    """Out of the pending list until `until` (default: in one day)."""
    until = body.until if body else None
    return _out(await service.snooze_draft(ctx, user_id=user.id, draft_id=draft_id, until=until))


@router.get(
    "/mailboxes/{mailbox_id}/draft-templates", response_model=DraftTemplatesOut, responses=ERRORS
)
async def get_templates(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> DraftTemplatesOut:
    """The question templates of each stage (`first`, `middle`, `last`) and their variables."""
    view = await draft_settings.get_templates(ctx, user_id=user.id, mailbox_id=mailbox_id)
    return DraftTemplatesOut.model_validate(view, from_attributes=True)


@router.put(
    "/mailboxes/{mailbox_id}/draft-templates", response_model=DraftTemplatesOut, responses=ERRORS
)
async def put_templates(
    mailbox_id: RowId, body: DraftTemplatesIn, ctx: ContextDep, user: UserDep
) -> DraftTemplatesOut:
    """Replace the mailbox's templates; a stage left out or null uses the defaults. A
    template with a syntax error or an unknown variable is refused (422, naming the line)."""
    view = await draft_settings.put_templates(
        ctx, user_id=user.id, mailbox_id=mailbox_id, templates=body.model_dump()
    )
    return DraftTemplatesOut.model_validate(view, from_attributes=True)


@router.get(
    "/mailboxes/{mailbox_id}/draft-settings", response_model=DraftSettingsOut, responses=ERRORS
)
async def get_settings(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> DraftSettingsOut:
    """Attachments of the forwarded e-mail, and SMTP sending (its password is never shown)."""
    view = await draft_settings.get_delivery_settings(ctx, user_id=user.id, mailbox_id=mailbox_id)
    return DraftSettingsOut.model_validate(view, from_attributes=True)


@router.put(
    "/mailboxes/{mailbox_id}/draft-settings", response_model=DraftSettingsOut, responses=ERRORS
)
async def put_settings(
    mailbox_id: RowId, body: DraftSettingsIn, ctx: ContextDep, user: UserDep
) -> DraftSettingsOut:
    """Re-attach the forwarded e-mail's attachments (up to a total size), and enable sending
    over SMTP (`smtp`: null turns it off). The SMTP password is stored encrypted."""
    smtp = None
    if body.smtp is not None:
        smtp = draft_settings.SmtpInput(
            host=body.smtp.host,
            port=body.smtp.port,
            security=body.smtp.security,
            username=body.smtp.username,
            password=body.smtp.password.get_secret_value() if body.smtp.password else None,
        )
    view = await draft_settings.put_delivery_settings(
        ctx,
        user_id=user.id,
        mailbox_id=mailbox_id,
        attach_originals=body.attach_originals,
        attachment_max_bytes=body.attachment_max_bytes,
        smtp=smtp,
    )
    return DraftSettingsOut.model_validate(view, from_attributes=True)


def _out(view: DraftView) -> DraftOut:
    return DraftOut.model_validate(view, from_attributes=True)
