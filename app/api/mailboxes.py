"""/api/v1/mailboxes: connect a mailbox, test it, sync it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status

from app.api.deps import ContextDep, RowId, UserDep
from app.api.schemas import (
    ConnectionTest,
    Created,
    MailboxCreate,
    MailboxList,
    MailboxOut,
    MailboxPatch,
    OAuth2Provider,
    OAuth2Providers,
    OAuth2Start,
    OAuth2StartIn,
    Problem,
    SyncResult,
)
from app.services import mailboxes as service
from app.services import oauth2 as oauth2_service
from app.services import sync as sync_service
from app.services.mailbox_views import Mailbox, public_view

log = logging.getLogger(__name__)
router = APIRouter(prefix="/mailboxes", tags=["mailboxes"])
# OpenAPI fragments: FastAPI's own open shape.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}
START_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 429: {"model": Problem}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=Created, responses=ERRORS)
async def create_mailbox(
    body: MailboxCreate,
    ctx: ContextDep,
    user: UserDep,
    verify: bool = Query(True, description="Log in to the server before saving"),
) -> Created:
    """Connect a mailbox. The login is tried first: a refused login answers 422 with the
    server's words, and nothing is saved."""
    secret = body.imap.password or body.imap.oauth2_token
    assert secret is not None
    data = service.MailboxInput(
        name=body.name,
        host=body.imap.host,
        port=body.imap.port,
        security=body.imap.security,
        username=body.imap.username,
        secret=secret.get_secret_value(),
        auth_method="password" if body.imap.password else "oauth2",
        addresses=body.addresses,
        timezone=body.timezone,
        holiday_country=body.holiday_country,
        holiday_subdiv=body.holiday_subdiv,
        folder_include=body.folders.include if body.folders else [],
        folder_exclude=body.folders.exclude if body.folders else [],
    )
    mailbox_id = await service.create_mailbox(ctx, user_id=user.id, data=data, verify=verify)
    return Created(id=mailbox_id)


@router.get("/oauth2/providers", response_model=OAuth2Providers, responses=ERRORS)
async def oauth2_providers(ctx: ContextDep, user: UserDep) -> OAuth2Providers:
    """The providers a rep can sign in with on this server (those the operator set up)."""
    found = oauth2_service.choices(ctx)
    return OAuth2Providers(items=[OAuth2Provider(key=c.key, label=c.label) for c in found])


@router.post(
    "/oauth2/start", response_model=OAuth2Start, responses={**ERRORS, 429: {"model": Problem}}
)
async def oauth2_start(body: OAuth2StartIn, ctx: ContextDep, user: UserDep) -> OAuth2Start:
    """Begin connecting a mailbox by signing in with a provider: open the `url` answered in
    the rep's browser, where they are signed in to Radio Silence as this token's user. The
    provider sends them back to `redirect_uri`; the mailbox is then created (named by its
    address), tested and its first sync starts; with `mailbox_id`, that mailbox is
    reconnected instead, keeping its threads. The sign-in can be finished once."""
    url = await oauth2_service.start(
        ctx,
        user_id=user.id,
        provider_key=body.provider,
        session_token=None,
        mailbox_id=body.mailbox_id,
    )
    return OAuth2Start(
        url=url,
        redirect_uri=oauth2_service.redirect_uri(ctx),
        expires_in=int(oauth2_service.START_TTL.total_seconds()),
    )


def _out(mailbox: Mailbox) -> MailboxOut:
    return MailboxOut.model_validate(public_view(mailbox), from_attributes=True)


@router.get("", response_model=MailboxList, responses=ERRORS)
async def list_mailboxes(ctx: ContextDep, user: UserDep) -> MailboxList:
    found = await service.list_mailboxes(ctx, user_id=user.id)
    return MailboxList(items=[_out(m) for m in found])


@router.get("/{mailbox_id}", response_model=MailboxOut, responses=ERRORS)
async def get_mailbox(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> MailboxOut:
    return _out(await service.get_mailbox(ctx, user_id=user.id, mailbox_id=mailbox_id))


def _edit(body: MailboxPatch) -> service.MailboxEdit:
    """The fields the body sets (NOT_NULL ones are never null here; the others may be)."""
    edit = service.MailboxEdit()
    given = body.model_fields_set
    if body.name is not None:
        edit["name"] = body.name
    if body.addresses is not None:
        edit["addresses"] = body.addresses
    if body.timezone is not None:
        edit["timezone"] = body.timezone
    if "holiday_country" in given:
        edit["holiday_country"] = body.holiday_country
    if "holiday_subdiv" in given:
        edit["holiday_subdiv"] = body.holiday_subdiv
    if body.folders is not None:
        edit["folder_include"] = body.folders.include
        edit["folder_exclude"] = body.folders.exclude
    imap = body.imap
    if imap is not None:
        if imap.host is not None:
            edit["host"] = imap.host
        if imap.port is not None:
            edit["port"] = imap.port
        if imap.security is not None:
            edit["security"] = imap.security
        if imap.username is not None:
            edit["username"] = imap.username
        if imap.password is not None:
            edit["secret"], edit["auth_method"] = imap.password.get_secret_value(), "password"
        if imap.oauth2_token is not None:
            edit["secret"] = imap.oauth2_token.get_secret_value()
            edit["auth_method"] = "oauth2"
    return edit


@router.patch("/{mailbox_id}", response_model=MailboxOut, responses=ERRORS)
async def update_mailbox(
    mailbox_id: RowId, body: MailboxPatch, ctx: ContextDep, user: UserDep
) -> MailboxOut:
    """Change any field; a changed server, username or secret is checked with a live login."""
    changes = _edit(body)
    updated = await service.update_mailbox(
        ctx, user_id=user.id, mailbox_id=mailbox_id, changes=changes
    )
    return _out(updated)


@router.delete("/{mailbox_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_mailbox(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> Response:
    """Forget the mailbox and everything read from it (its mail stays on the server)."""
    await service.delete_mailbox(ctx, user_id=user.id, mailbox_id=mailbox_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{mailbox_id}/test", response_model=ConnectionTest, responses=ERRORS)
async def test_mailbox(mailbox_id: RowId, ctx: ContextDep, user: UserDep) -> ConnectionTest:
    """Log in with the stored credentials and list the folders."""
    folders = await service.test_stored(ctx, user_id=user.id, mailbox_id=mailbox_id)
    return ConnectionTest(ok=True, folders=folders)


@router.post("/{mailbox_id}/sync", response_model=SyncResult, responses=ERRORS)
async def sync_mailbox(
    mailbox_id: RowId,
    request: Request,
    response: Response,
    ctx: ContextDep,
    user: UserDep,
    wait: bool = Query(False, description="Answer when the sync and the rules have finished"),
) -> SyncResult:
    """Read new mail now. With wait=true the answer comes after the rules have run."""
    await service.get_mailbox(ctx, user_id=user.id, mailbox_id=mailbox_id)
    if wait:
        outcome = await sync_service.user_sync(
            ctx, mailbox_id, user_id=user.id, wait_for_lease=ctx.settings.lease_seconds
        )
        return SyncResult(
            mailbox_id=mailbox_id,
            status="done",
            folders=outcome.folders,
            new_messages=outcome.new_messages,
            skipped=outcome.skipped,
            threads_evaluated=outcome.threads_evaluated,
        )

    sync_service.start_sync(ctx, request.app.state.background_tasks, mailbox_id, user_id=user.id)
    response.status_code = status.HTTP_202_ACCEPTED
    return SyncResult(mailbox_id=mailbox_id, status="started")
