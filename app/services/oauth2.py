"""Connecting a mailbox by signing in with a provider ("Connect with Google"): the start
(state and PKCE verifier saved, bound to the user and the browser session), the provider's
answer at the callback (state taken once, code exchanged, the address read from the ID
token, a live XOAUTH2 login), then a new mailbox, or the same mailbox reconnected."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import urlsplit

from app.crypto import hash_api_token
from app.errors import ConfigError, InvalidInput, MailServerError, RateLimited
from app.mail import oauth2_client as client
from app.mail import oauth2_providers as providers
from app.services import mailboxes
from app.services import oauth2_tokens as tokens_service
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import oauth2_starts as store
from app.storage.mailboxes import Grant, MailboxChanges

log = logging.getLogger(__name__)
START_TTL = timedelta(minutes=15)  # time to sign in at the provider
MAX_STARTS_PER_USER = 20  # sign-ins under way at once (each is a row until used or expired)
CALLBACK_PATH = "/oauth2/callback"


@dataclass(frozen=True, kw_only=True)
class Choice:
    key: str
    label: str


@dataclass(frozen=True, kw_only=True)
class Finished:
    mailbox_id: int
    reconnected: bool
    address: str


def choices(ctx: Context) -> list[Choice]:
    """The buttons to show: only providers the operator set up (none while a client secret's
    file cannot be read: logged, and the pages still work)."""
    try:
        found = providers.configured(ctx.settings)
    except ConfigError as exc:
        log.error("oauth2.misconfigured error=%s", exc.message)
        return []
    return [Choice(key=p.key, label=p.label) for p in found]


async def form_targets(ctx: Context) -> list[str]:
    """The origins of the configured providers' sign-in pages, where the buttons' forms lead
    on to (a provider whose discovery fails is left out: its button answers with the error)."""
    origins = []
    try:
        found = providers.configured(ctx.settings)
    except ConfigError:
        return []
    for provider in found:
        try:
            where = await client.endpoints(provider)
        except MailServerError:
            continue
        parts = urlsplit(where.authorize)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return origins


def redirect_uri(ctx: Context) -> str:
    return ctx.settings.base_url + CALLBACK_PATH


def _hash(value: str) -> str:
    return hash_api_token(value)


async def start(
    ctx: Context,
    *,
    user_id: int,
    provider_key: str,
    session_token: str | None,
    mailbox_id: int | None = None,
) -> str:
    """The provider's sign-in URL to send the browser to. `session_token`: the browser session
    that asked (its callback must come in the same one); None when the API asked. With
    `mailbox_id`, the sign-in reconnects that mailbox (signed in with the same provider)."""
    provider = providers.find(ctx.settings, provider_key)
    if mailbox_id is not None:
        mailbox = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
        if mailbox.oauth2_provider != provider.key:
            raise InvalidInput(f"this mailbox was not connected with {provider.label}")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks for 43 to 128
    async with ctx.engine.begin() as conn:
        if await store.count_for_user(conn, user_id, ctx.clock()) >= MAX_STARTS_PER_USER:
            raise RateLimited("too many sign-ins under way: finish one or wait a few minutes")
        now = ctx.clock()
        started = store.NewStart(
            user_id=user_id,
            state_hash=_hash(state),
            session_hash=_hash(session_token) if session_token else None,
            provider=provider.key,
            verifier_enc=ctx.box.encrypt(verifier),
            mailbox_id=mailbox_id,
            expires_at=now + START_TTL,
        )
        await store.save(conn, started, now=now)
    return await client.authorization_url(
        provider, redirect_uri=redirect_uri(ctx), state=state, code_verifier=verifier
    )


REFUSED_STATE = (
    "this sign-in cannot be finished: it was used already, has expired or was started by "
    "someone else. Start again from “Connect a mailbox”."
)


async def finish(
    ctx: Context,
    *,
    user_id: int,
    session_token: str | None,
    state: str,
    code: str,
    error: str = "",
) -> Finished:
    """The provider sent the browser back: check and use up `state`, trade the code, log in,
    save. InvalidInput for a forged, replayed or foreign state (nothing changes)."""
    if not state or len(state) > 200:
        raise InvalidInput(REFUSED_STATE)
    async with ctx.engine.begin() as conn:
        begun = await store.take(conn, _hash(state), ctx.clock())
    if (
        begun is None
        or begun.user_id != user_id
        or (
            begun.session_hash is not None
            and (session_token is None or begun.session_hash != _hash(session_token))
        )
    ):
        raise InvalidInput(REFUSED_STATE)
    provider = providers.find(ctx.settings, begun.provider)
    if error:
        raise InvalidInput(
            f"{provider.label} did not give access ({error[:60]}): nothing was connected"
        )
    if not code or len(code) > 4096:
        raise InvalidInput(f"{provider.label} sent no authorization code: please try again")
    got = await client.exchange_code(
        provider,
        redirect_uri=redirect_uri(ctx),
        code=code,
        code_verifier=ctx.box.decrypt(begun.verifier_enc),
    )
    address = client.address_of(got.id_token, client_id=provider.client_id, now=ctx.clock())
    if got.refresh_token is None:
        raise client.ProviderError(
            f"{provider.label} gave no refresh token, so the mailbox could not be read for "
            "long: ask your operator to check the app's scopes (offline access)"
        )
    grant = tokens_service.grant_values(ctx, provider.key, got)
    if begun.mailbox_id is not None:
        return await _reconnect(ctx, user_id, begun.mailbox_id, address, got, grant)
    data = mailboxes.MailboxInput(
        name=address,
        host=provider.imap_host,
        port=provider.imap_port,
        security=provider.imap_security,
        username=address,
        secret=got.access_token,
        auth_method="oauth2",
        addresses=[address],
        timezone="UTC",
        holiday_country=None,
    )
    mailbox_id = await mailboxes.create_mailbox(ctx, user_id=user_id, data=data, grant=grant)
    return Finished(mailbox_id=mailbox_id, reconnected=False, address=address)


async def _reconnect(
    ctx: Context,
    user_id: int,
    mailbox_id: int,
    address: str,
    got: client.Tokens,
    grant: Grant,
) -> Finished:
    """The same mailbox (its id, threads and history) with the new grant, once it logs in."""
    row = await mailboxes.get_row(ctx, user_id=user_id, mailbox_id=mailbox_id)
    if row["imap_username"].lower() != address.lower():
        raise InvalidInput(
            f"you signed in as {address}, but this mailbox is {row['imap_username']}: "
            "sign in with that account"
        )
    account = replace(mailboxes.account_of(ctx, row), secret=got.access_token)
    await mailboxes.test_connection(ctx, account, user_id=user_id)
    async with ctx.engine.begin() as conn:
        now = ctx.clock()
        changes = MailboxChanges(status="new", status_message="", next_sync_at=now)
        await mailbox_store.update_mailbox(conn, mailbox_id, changes, now=now, grant=grant)
    return Finished(mailbox_id=mailbox_id, reconnected=True, address=address)
