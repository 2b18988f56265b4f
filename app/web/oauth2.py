"""Signing in a mailbox with a provider from the pages: the "Connect with …" and "Reconnect"
buttons start it (POST, CSRF-checked), the provider sends the browser back to the callback."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from app.services import oauth2 as service
from app.services import sync as sync_service
from app.services.context import Context
from app.web import sessions
from app.web.deps import Ctx, Form, PageUser, row_id, text
from app.web.headers import csp_with_form_targets
from app.web.render import redirect

router = APIRouter(include_in_schema=False)


async def form_headers(ctx: Context) -> dict[str, str]:
    """The security policy of a page with sign-in buttons: its forms may lead on to the
    configured providers' sign-in pages (browsers check form-action on redirects too)."""
    origins = await service.form_targets(ctx)
    return {"content-security-policy": csp_with_form_targets(origins)} if origins else {}


@router.post("/mailboxes/oauth2/{provider}/start")
async def start(request: Request, provider: str, ctx: Ctx, form: Form, user: PageUser) -> Response:
    """Off to the provider's sign-in page; with `mailbox_id`, to reconnect that mailbox."""
    mailbox = text(form, "mailbox_id").strip()
    url = await service.start(
        ctx,
        user_id=user.id,
        provider_key=provider[:40],
        session_token=sessions.session_token(request),
        mailbox_id=row_id(int(mailbox)) if mailbox.isdigit() else None,
    )
    return RedirectResponse(url, status_code=303)


@router.get(service.CALLBACK_PATH)
async def callback(request: Request, ctx: Ctx, user: PageUser) -> Response:
    """The provider's answer: a new mailbox (on to its first sync), or the same one
    reconnected (on to its page). A forged or used state changes nothing: an error page."""
    query = request.query_params
    done = await service.finish(
        ctx,
        user_id=user.id,
        session_token=sessions.session_token(request),
        state=query.get("state", ""),
        code=query.get("code", ""),
        error=query.get("error", ""),
    )
    tasks = request.app.state.background_tasks
    sync_service.start_sync(ctx, tasks, done.mailbox_id, user_id=user.id)
    if done.reconnected:
        return redirect(f"/mailboxes/{done.mailbox_id}", "reconnected")
    return redirect(f"/mailboxes/{done.mailbox_id}/first-sync")
