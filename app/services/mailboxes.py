"""Mailboxes: connect (with a live login check), list, change, delete."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Literal, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import IntegrityError

from app.calendars import validate_country
from app.errors import Conflict, InvalidInput, MailAuthError, NotFound
from app.mail.imap import ImapAccount, ImapSession, Security, check_host, check_security
from app.mail.oauth2 import run_refresh_command
from app.runtime import worker_id
from app.services import oauth2_tokens
from app.services.accounts import normalize_email
from app.services.context import Context
from app.services.mailbox_views import Mailbox, mailbox_of
from app.services.mailhosts import checked_addresses
from app.storage import mailboxes as store
from app.storage.engine import reading
from app.storage.mailboxes import (
    AuthMethod,
    FolderRead,
    Grant,
    MailboxChanges,
    MailboxRow,
    NewMailbox,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class MailboxInput:
    name: str
    host: str
    port: int
    security: Security
    username: str
    secret: str = field(repr=False)
    auth_method: AuthMethod  # "none": imported from a file, never logged in to
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None = None
    folder_include: list[str] = field(default_factory=list)
    folder_exclude: list[str] = field(default_factory=list)

    def account(self) -> ImapAccount:
        """How to log in to this mailbox's server."""
        return ImapAccount(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            secret=self.secret,
            auth_method=login_method(self.auth_method),
        )


def login_method(method: AuthMethod) -> Literal["password", "oauth2"]:
    # The IMAP login tells only OAuth2 from the rest (an imported mailbox has no server).
    return "oauth2" if method == "oauth2" else "password"


class MailboxEdit(TypedDict, total=False):
    """A partial update of a mailbox: the keys given change, the others keep their value."""

    name: str
    host: str
    port: int
    security: Security
    username: str
    secret: str
    auth_method: Literal["password", "oauth2"]
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    folder_include: list[str]
    folder_exclude: list[str]


async def stored_account(ctx: Context, row: MailboxRow) -> ImapAccount:
    """How to log in to a stored mailbox, its provider's access token refreshed if due."""
    return await oauth2_tokens.fresh_account(ctx, row, account_of(ctx, row))


def account_of(ctx: Context, row: MailboxRow) -> ImapAccount:
    return ImapAccount(
        host=row["imap_host"],
        port=row["imap_port"],
        security=row["imap_security"],
        username=row["imap_username"],
        secret=ctx.box.decrypt(row["secret_enc"]),
        auth_method=login_method(row["auth_method"]),
    )


def validate(ctx: Context, data: MailboxInput) -> MailboxInput:
    if not data.name.strip():
        raise InvalidInput("name must not be empty")
    if not data.addresses:
        raise InvalidInput("addresses must list at least one of your e-mail addresses")
    addresses = [normalize_email(a) for a in data.addresses]
    try:
        ZoneInfo(data.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown timezone {data.timezone!r}: use an IANA name such as 'Europe/Berlin'"
        ) from None
    country = validate_country(data.holiday_country, data.holiday_subdiv)
    if data.auth_method != store.FILE_SOURCE:  # an imported mailbox has no server to check
        check_host(data.host)
        check_security(data.host, data.security, allow_plaintext=ctx.settings.imap_allow_plaintext)
    return replace(data, addresses=addresses, holiday_country=country, name=data.name.strip())


async def test_connection(ctx: Context, account: ImapAccount, *, user_id: int) -> list[str]:
    """Log in and list the folders; raises MailServerError with the server's words. The host
    is checked by the guard first; connecting and the greeting get the short test timeout;
    the user may run only a few tests (and approvals) at once (RateLimited beyond)."""
    with ctx.mail_slots.hold(user_id):
        addresses = await checked_addresses(ctx, account.host, account.port, field="imap.host")

        def probe() -> list[str]:
            timeout = ctx.settings.imap_test_timeout_seconds
            with open_session(ctx, account, addresses, connect_timeout=timeout) as session:
                return [f.name for f in session.list_folders()]

        return await ctx.mail_io.run(probe)


def open_session(
    ctx: Context,
    account: ImapAccount,
    addresses: Sequence[str],
    *,
    connect_timeout: float | None = None,
    refresh_command: bool = True,
) -> ImapSession:
    """Log in to one of `addresses` (the host's, as checked by `checked_addresses`); blocking:
    run it on a mail thread. When the server refuses an OAuth2 mailbox's token and the
    operator set a refresh command, run it once and log in with the token it prints; the
    session then carries it as `renewed_secret`, for the caller to store. (Mailboxes signed
    in with a provider pass refresh_command=False: the product refreshes their tokens.)"""
    try:
        return _open(ctx, account, addresses, connect_timeout)
    except MailAuthError:
        command = ctx.settings.oauth2_refresh_command
        if account.auth_method != "oauth2" or not command or not refresh_command:
            raise
    token = run_refresh_command(
        command, account.username, timeout=ctx.settings.imap_timeout_seconds
    )
    session = _open(ctx, replace(account, secret=token), addresses, connect_timeout)
    session.renewed_secret = token
    log.info("oauth2.token_renewed username=%s", account.username)
    return session


async def keep_renewed_secret(ctx: Context, mailbox_id: int, session: ImapSession) -> None:
    """Store the token a refresh produced (encrypted), so the next login starts with it."""
    if session.renewed_secret is not None:
        async with ctx.engine.begin() as conn:
            sealed = ctx.box.encrypt(session.renewed_secret)
            await store.update_mailbox(
                conn, mailbox_id, MailboxChanges(secret_enc=sealed), now=ctx.clock()
            )


async def open_mailbox_session(
    ctx: Context,
    mailbox: MailboxRow,
    *,
    executor: Executor | None = None,
    purpose: str | None = None,
) -> ImapSession:
    """A logged-in session on a stored mailbox, its OAuth2 token renewed if need be (by its
    provider's refresh token before it expires and when the server refuses it, else by the
    refresh command). Its host passes the guard first. The blocking login runs on `executor`
    (the IDLE watchers have their own), else on a mail thread. With a `purpose` (sync, watch)
    the server is told it and the worker's id (IMAP ID), for its operator's log."""
    account = await stored_account(ctx, mailbox)
    addresses = await checked_addresses(ctx, account.host, account.port, field="imap.host")
    loop = asyncio.get_running_loop()
    executor = executor or ctx.mail_io.executor
    granted = bool(mailbox["oauth2_provider"])

    def login(account: ImapAccount) -> ImapSession:
        return open_session(ctx, account, addresses, refresh_command=not granted)

    try:
        session = await loop.run_in_executor(executor, login, account)
    except MailAuthError:
        if not granted:
            raise
        account = await oauth2_tokens.fresh_account(ctx, mailbox, account, refused=True)
        session = await loop.run_in_executor(executor, login, account)
    try:
        if purpose is not None:
            fields = {"name": "radiosilence", "x-worker": worker_id(), "x-purpose": purpose}
            await loop.run_in_executor(executor, session.identify, fields)
        await keep_renewed_secret(ctx, int(mailbox["id"]), session)
    except BaseException:
        await loop.run_in_executor(executor, session.close)
        raise
    return session


def _open(
    ctx: Context, account: ImapAccount, addresses: Sequence[str], connect_timeout: float | None
) -> ImapSession:
    s = ctx.settings
    return ImapSession.open(
        account,
        ca_file=s.imap_ca_file,
        timeout=s.imap_timeout_seconds,
        connect_timeout=connect_timeout,
        allow_plaintext=s.imap_allow_plaintext,
        addresses=addresses,
    )


async def create_mailbox(
    ctx: Context,
    *,
    user_id: int,
    data: MailboxInput,
    verify: bool = True,
    grant: Grant | None = None,
) -> int:
    """Save a mailbox after a live login (unless `verify` is off). `grant`: the columns of a
    provider's sign-in (`oauth2_tokens.grant_values`)."""
    data = validate(ctx, data)
    account = data.account()
    if verify:
        await test_connection(ctx, account, user_id=user_id)
    elif data.auth_method != store.FILE_SOURCE:  # saved untested: its host is checked all the same
        with ctx.mail_slots.hold(user_id):  # a DNS lookup may wait too
            await checked_addresses(ctx, data.host, data.port, field="imap.host")
    try:
        async with ctx.engine.begin() as conn:
            # Read over IMAP: its first sync is a baseline (evaluation.end_baseline).
            baseline = data.auth_method != store.FILE_SOURCE
            values = NewMailbox(
                user_id=user_id,
                name=data.name,
                imap_host=data.host,
                imap_port=data.port,
                imap_security=data.security,
                imap_username=data.username,
                auth_method=data.auth_method,
                secret_enc=ctx.box.encrypt(data.secret),
                addresses=data.addresses,
                timezone=data.timezone,
                holiday_country=data.holiday_country,
                holiday_subdiv=data.holiday_subdiv,
                folder_include=data.folder_include,
                folder_exclude=data.folder_exclude,
                rules={},
                baseline=baseline,
            )
            return await store.create_mailbox(conn, values, now=ctx.clock(), grant=grant)
    except IntegrityError:
        raise Conflict(f"you have a mailbox named {data.name!r} already") from None


def _changes(ctx: Context, data: MailboxInput) -> MailboxChanges:
    """Every column the connect form sets, as `data` has them."""
    return MailboxChanges(
        name=data.name,
        imap_host=data.host,
        imap_port=data.port,
        imap_security=data.security,
        imap_username=data.username,
        auth_method=data.auth_method,
        secret_enc=ctx.box.encrypt(data.secret),
        addresses=data.addresses,
        timezone=data.timezone,
        holiday_country=data.holiday_country,
        holiday_subdiv=data.holiday_subdiv,
        folder_include=data.folder_include,
        folder_exclude=data.folder_exclude,
    )


async def get_row(ctx: Context, *, user_id: int, mailbox_id: int) -> MailboxRow:
    """The user's stored mailbox, secrets sealed: for services that log in or revoke."""
    async with reading(ctx.engine) as conn:
        row = await store.get_mailbox(conn, mailbox_id, user_id=user_id)
    if row is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    return row


async def get_mailbox(ctx: Context, *, user_id: int, mailbox_id: int) -> Mailbox:
    return mailbox_of(await get_row(ctx, user_id=user_id, mailbox_id=mailbox_id))


async def list_mailboxes(ctx: Context, *, user_id: int) -> list[Mailbox]:
    async with reading(ctx.engine) as conn:
        return [mailbox_of(r) for r in await store.list_mailboxes(conn, user_id)]


async def test_stored(ctx: Context, *, user_id: int, mailbox_id: int) -> list[str]:
    """Log in with the stored credentials (a provider's token refreshed if due) and list the
    folders, as `test_connection`."""
    row = await get_row(ctx, user_id=user_id, mailbox_id=mailbox_id)
    account = await stored_account(ctx, row)
    return await test_connection(ctx, account, user_id=user_id)


async def update_mailbox(
    ctx: Context, *, user_id: int, mailbox_id: int, changes: MailboxEdit
) -> Mailbox:
    """Apply a partial update; a changed connection or secret is checked with a live login."""
    row = await get_row(ctx, user_id=user_id, mailbox_id=mailbox_id)
    current = MailboxInput(
        name=row["name"],
        host=row["imap_host"],
        port=row["imap_port"],
        security=row["imap_security"],
        username=row["imap_username"],
        secret=ctx.box.decrypt(row["secret_enc"]),
        auth_method=row["auth_method"],
        addresses=row["addresses"],
        timezone=row["timezone"],
        holiday_country=row["holiday_country"],
        holiday_subdiv=row["holiday_subdiv"],
        folder_include=row["folder_include"] or [],
        folder_exclude=row["folder_exclude"] or [],
    )
    merged = validate(ctx, replace(current, **changes))
    connection_fields = {"host", "port", "security", "username", "secret", "auth_method"}
    if connection_fields & changes.keys():
        await test_connection(ctx, merged.account(), user_id=user_id)
    values = _changes(ctx, merged)
    if connection_fields & changes.keys():
        values["status"], values["status_message"] = "new", ""
    if {"secret", "auth_method"} & changes.keys():
        values.update(oauth2_tokens.NO_GRANT)  # a password or pasted token replaces a sign-in
    try:
        async with ctx.engine.begin() as conn:
            await store.update_mailbox(conn, mailbox_id, values, now=ctx.clock())
            updated = await store.get_mailbox(conn, mailbox_id)
    except IntegrityError:
        raise Conflict(f"you have a mailbox named {merged.name!r} already") from None
    assert updated is not None
    if {"secret", "auth_method"} & changes.keys():
        # The sign-in it replaced is no longer of use to anyone: end it at the provider too.
        await oauth2_tokens.revoke(ctx, row)
    return mailbox_of(updated)


async def delete_mailbox(ctx: Context, *, user_id: int, mailbox_id: int) -> None:
    """Forget the mailbox; a provider's grant is revoked there first where it offers that."""
    row = await get_row(ctx, user_id=user_id, mailbox_id=mailbox_id)
    await oauth2_tokens.revoke(ctx, row)
    async with ctx.engine.begin() as conn:
        await store.delete_mailbox(conn, mailbox_id)


async def check_connection(ctx: Context, data: MailboxInput, *, user_id: int) -> list[str]:
    """Validate what a form gives and log in with it: the folders found, or the server's
    own words in a MailServerError. Nothing is saved."""
    data = validate(ctx, data)
    return await test_connection(ctx, data.account(), user_id=user_id)


async def folders_read(ctx: Context, *, user_id: int, mailbox_id: int) -> list[FolderRead]:
    await get_row(ctx, user_id=user_id, mailbox_id=mailbox_id)
    async with reading(ctx.engine) as conn:
        return await store.folders_read(conn, mailbox_id)


def is_imported(mailbox: Mailbox) -> bool:
    """The mailbox was read from a file (`radiosilence import`): no server behind it."""
    return mailbox.auth_method == store.FILE_SOURCE
