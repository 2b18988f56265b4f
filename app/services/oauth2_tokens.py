"""The access tokens of mailboxes signed in with a provider: refreshed before they expire and
when the mail server refuses one; a grant the provider refuses fails the mailbox with
"sign in again" (the sync records it, once); revoked at the provider when the mailbox goes.

Refresh tokens are stored encrypted like passwords (`ctx.box`) and never logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

from app.errors import ConfigError, InvalidInput, MailAuthError
from app.mail import oauth2_client as client
from app.mail import oauth2_providers as providers
from app.mail.imap import ImapAccount
from app.mail.oauth2_client import GrantRefused, Tokens
from app.services.context import Context
from app.storage import mailboxes as store
from app.storage.engine import reading
from app.storage.mailboxes import Grant, MailboxChanges, MailboxRow

log = logging.getLogger(__name__)


def grant_values(ctx: Context, provider_key: str, tokens: Tokens) -> Grant:
    """The mailbox columns that hold a grant, encrypted."""
    assert tokens.refresh_token is not None
    return Grant(
        auth_method="oauth2",
        secret_enc=ctx.box.encrypt(tokens.access_token),
        oauth2_provider=provider_key,
        refresh_token_enc=ctx.box.encrypt(tokens.refresh_token),
        token_expires_at=tokens.expires_at,
    )


NO_GRANT = MailboxChanges(oauth2_provider=None, refresh_token_enc=None, token_expires_at=None)


def _provider(ctx: Context, key: str) -> providers.Provider:
    try:
        return providers.find(ctx.settings, key)
    except (InvalidInput, ConfigError):
        raise MailAuthError(
            f"signing in with {key} is no longer set up on this server: ask your operator, "
            "or connect the mailbox with a password"
        ) from None


def _lock(ctx: Context, mailbox_id: int) -> asyncio.Lock:
    return ctx.oauth2_locks.setdefault(mailbox_id, asyncio.Lock())


async def _row(ctx: Context, mailbox_id: int) -> MailboxRow:
    async with reading(ctx.engine) as conn:
        row = await store.get_mailbox(conn, mailbox_id)
    if row is None:
        raise MailAuthError("the mailbox was removed")
    return row


async def fresh_account(
    ctx: Context, mailbox: MailboxRow, account: ImapAccount, *, refused: bool = False
) -> ImapAccount:
    """`account` with an access token the server should take: the stored one while it has more
    than the margin to live, else a refreshed one (stored). `refused`: the server has just
    refused `account.secret`, so refresh whatever its expiry says. Mailboxes without a
    provider are returned unchanged."""
    key = mailbox["oauth2_provider"]
    if not key:
        return account
    async with _lock(ctx, int(mailbox["id"])):
        # Another login of this process (or another process) may have refreshed meanwhile.
        row = await _row(ctx, int(mailbox["id"]))
        stored = ctx.box.decrypt(row["secret_enc"])
        margin = timedelta(seconds=ctx.settings.oauth2_refresh_margin_seconds)
        expires = row["token_expires_at"]
        fresh_enough = expires is not None and expires - margin > ctx.clock()
        if (not refused and fresh_enough) or (refused and stored != account.secret):
            return replace(account, secret=stored)
        provider = _provider(ctx, key)
        if row["refresh_token_enc"] is None:
            raise GrantRefused(client.sign_in_again(provider))
        used = ctx.box.decrypt(row["refresh_token_enc"])
        try:
            tokens = await client.refresh(provider, used)
        except GrantRefused:
            await _forget_refused(ctx, int(row["id"]), used)
            raise
        async with ctx.engine.begin() as conn:
            await store.update_mailbox(
                conn,
                int(row["id"]),
                MailboxChanges(
                    secret_enc=ctx.box.encrypt(tokens.access_token),
                    refresh_token_enc=ctx.box.encrypt(tokens.refresh_token or used),
                    token_expires_at=tokens.expires_at,
                ),
                now=ctx.clock(),
            )
    log.info("oauth2.token_refreshed mailbox=%s provider=%s", row["id"], key)
    return replace(account, secret=tokens.access_token)


async def _forget_refused(ctx: Context, mailbox_id: int, used: str) -> None:
    """Drop a refresh token the provider refused, so that later syncs fail at once without
    asking it again, unless another process has stored a new one meanwhile."""
    row = await _row(ctx, mailbox_id)
    current = row["refresh_token_enc"]
    if current is not None and ctx.box.decrypt(current) == used:
        async with ctx.engine.begin() as conn:
            forgotten = MailboxChanges(refresh_token_enc=None)
            await store.update_mailbox(conn, mailbox_id, forgotten, now=ctx.clock())
    log.info("oauth2.grant_refused mailbox=%s", mailbox_id)


async def revoke(ctx: Context, mailbox: MailboxRow) -> bool:
    """Revoke the mailbox's grant at its provider, where it offers that (best effort)."""
    key, sealed = mailbox["oauth2_provider"], mailbox["refresh_token_enc"]
    if not key or sealed is None:
        return False
    try:
        provider = providers.find(ctx.settings, key)
    except (InvalidInput, ConfigError):
        return False
    done = await client.revoke(provider, ctx.box.decrypt(sealed))
    log.info("oauth2.revoked mailbox=%s provider=%s done=%s", mailbox["id"], key, done)
    return done
