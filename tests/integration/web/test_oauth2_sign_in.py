"""Signing a mailbox in with a provider, end to end on loopback: a real authorization server
(Authlib's server components, tests/support/oauth_server.py) with short-lived access tokens,
and Dovecot whose oauth2 passdb asks that server's introspection endpoint about every token,
so Dovecot itself accepts or refuses each login. The pages are driven in process here; the
same flow runs in Chromium in tests/e2e."""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from app.errors import MailAuthError
from app.services import accounts, draft_settings, events, mailboxes, overview
from app.services import drafts as drafts_service
from app.services import oauth2 as oauth2_service
from app.services import sync as sync_service
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage.engine import reading
from tests.conftest import make_settings
from tests.factories import make_message
from tests.support.dovecot import DovecotServer
from tests.support.oauth_server import (
    OAuthServer,
    dovecot_asking,
    provider_settings,
    running_oauth_server,
)
from tests.support.pages import Browser, Page, browser

pytestmark = pytest.mark.integration
BASE = "http://test"  # the in-process app's address, and so RADIOSILENCE_PUBLIC_URL
PASSWORD = "pw-123456789"


@pytest.fixture(scope="module")
def idp() -> Iterator[OAuthServer]:
    with running_oauth_server(access_token_seconds=3) as server:
        server.register(f"{BASE}/oauth2/callback")
        yield server


@pytest.fixture(scope="module")
def idp_dovecot(idp: OAuthServer) -> Iterator[DovecotServer]:
    with dovecot_asking(idp) as dovecot:
        yield dovecot


@dataclass
class Rep:
    ctx: Context
    page: Browser
    user_id: int
    address: str
    idp: OAuthServer
    dovecot: DovecotServer


@pytest.fixture
async def rep(
    database_url: str, idp: OAuthServer, idp_dovecot: DovecotServer
) -> AsyncIterator[Rep]:
    """A signed-in rep whose mail lives on the token-checking Dovecot, with one sent
    proposal; the provider signs them in as that address."""
    address = f"rep-{uuid.uuid4().hex[:8]}@seller.example"
    idp_dovecot.add_user(address, "unused-" + uuid.uuid4().hex)  # the mail home only
    idp_dovecot.append(
        address,
        "Sent",
        make_message(
            from_=address,
            to=["buyer@customer.example"],
            subject="Proposal",
            date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            message_id=f"p-{uuid.uuid4().hex[:8]}@seller.example",
        ),
    )
    idp.signed_in_as = address
    ctx = Context.create(
        make_settings(
            database_url,
            public_url=BASE,
            oauth2_refresh_margin_seconds=1,
            **provider_settings(idp, idp_dovecot),
        )
    )
    user_id = await accounts.create_user(ctx, email=address, password=PASSWORD)
    page = browser(ctx, base_url=BASE)
    await page.sign_in(address, PASSWORD)
    try:
        yield Rep(ctx, page, user_id, address, idp, idp_dovecot)
    finally:
        await page.aclose()
        await ctx.close()


async def at_provider(authorize_url: str, *, decision: str = "allow") -> str:
    """The rep at the provider: the consent page, then "Allow"; returns where the provider
    sends the browser back (our callback, with code and state)."""
    async with httpx.AsyncClient(timeout=10) as http:
        consent = await http.get(authorize_url)
        assert consent.status_code == 200, consent.text
        answer = await http.post(authorize_url, data={"decision": decision})
    assert answer.status_code == 302, answer.text
    location = answer.headers["location"]
    assert location.startswith(f"{BASE}/oauth2/callback?")
    return location


async def sign_in_with_provider(page: Browser, start_page: str, action: str) -> Page:
    """Press the provider's button on `start_page`, allow at the provider, come back."""
    started = await page.submit(start_page, action)
    assert started.status == 303, started.text[:300]
    assert started.location is not None
    back = await at_provider(started.location)
    return await page.get(back.removeprefix(BASE))


async def stored(ctx: Context, mailbox_id: int) -> dict[str, Any]:
    async with reading(ctx.engine) as conn:
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert row is not None
    return row


async def connect_with_provider(rep: Rep) -> int:
    back = await sign_in_with_provider(rep.page, "/mailboxes/new", "/mailboxes/oauth2/oidc/start")
    assert back.status == 303, back.text[:400]
    assert back.location is not None and back.location.endswith("/first-sync")
    mailbox_id = int(back.location.split("/")[2])
    await asyncio.gather(*rep.page.tasks)  # the first sync the callback started
    rep.page.tasks.clear()
    return mailbox_id


async def test_connect_with_the_provider_creates_a_mailbox_that_syncs(rep: Rep) -> None:
    connect_page = await rep.page.get("/mailboxes/new")
    assert "Connect with Test IdP" in connect_page.text
    # The button's form leads on to the provider: the page's policy allows that origin.
    policy = (await rep.page.client.get("/mailboxes/new")).headers["content-security-policy"]
    assert f"form-action 'self' {rep.idp.base_url}" in policy

    mailbox_id = await connect_with_provider(rep)

    row = await stored(rep.ctx, mailbox_id)
    assert row["status"] == "ok", row["status_message"]
    assert row["imap_username"] == rep.address
    assert row["addresses"] == [rep.address]
    assert row["oauth2_provider"] == "oidc"
    threads = await overview.thread_list(rep.ctx, user_id=rep.user_id)
    assert [line.subject for line in threads.lines] == ["Proposal"]
    shown = await rep.page.get(f"/mailboxes/{mailbox_id}")
    assert "signed in with Test IdP" in shown.text


async def test_a_replayed_or_forged_state_is_refused(rep: Rep) -> None:
    started = await rep.page.submit("/mailboxes/new", "/mailboxes/oauth2/oidc/start")
    assert started.location is not None
    back = (await at_provider(started.location)).removeprefix(BASE)
    state = parse_qs(urlsplit(back).query)["state"][0]

    # Another signed-in user cannot finish this rep's sign-in (and it is used up by trying).
    other = await accounts.create_user(rep.ctx, email="other@seller.example", password=PASSWORD)
    assert other
    intruder = browser(rep.ctx, base_url=BASE)
    try:
        await intruder.sign_in("other@seller.example", PASSWORD)
        refused = await intruder.get(back)
    finally:
        await intruder.aclose()
    assert refused.status == 422
    assert "cannot be finished" in refused.text

    forged = await rep.page.get(back.replace(state, "forged-" + state[7:]))
    assert forged.status == 422 and "cannot be finished" in forged.text

    # A sign-in of the rep's own, finished once, cannot be finished again.
    started = await rep.page.submit("/mailboxes/new", "/mailboxes/oauth2/oidc/start")
    assert started.location is not None
    back = (await at_provider(started.location)).removeprefix(BASE)
    first = await rep.page.get(back)
    assert first.status == 303
    await asyncio.gather(*rep.page.tasks)
    replayed = await rep.page.get(back)
    assert replayed.status == 422 and "cannot be finished" in replayed.text
    assert len(await mailboxes.list_mailboxes(rep.ctx, user_id=rep.user_id)) == 1
    assert await mailboxes.list_mailboxes(rep.ctx, user_id=other) == []


async def test_denied_at_the_provider_connects_nothing(rep: Rep) -> None:
    started = await rep.page.submit("/mailboxes/new", "/mailboxes/oauth2/oidc/start")
    assert started.location is not None
    back = await at_provider(started.location, decision="deny")
    answer = await rep.page.get(back.removeprefix(BASE))
    assert answer.status == 422
    assert "did not give access (access_denied)" in answer.text
    assert await mailboxes.list_mailboxes(rep.ctx, user_id=rep.user_id) == []


async def test_expired_access_tokens_are_refreshed_without_the_rep(
    rep: Rep, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mailbox_id = await connect_with_provider(rep)
    first_token = rep.ctx.box.decrypt((await stored(rep.ctx, mailbox_id))["secret_enc"])
    refreshes = rep.idp.refreshes

    # The token's lifetime (3 s) runs out: the next sync refreshes it before logging in.
    await asyncio.sleep(3.2)
    assert first_token not in rep.idp.active_access_tokens()
    outcome = await sync_service.sync_mailbox(rep.ctx, mailbox_id)
    assert outcome.folders >= 1
    assert rep.idp.refreshes == refreshes + 1
    second = await stored(rep.ctx, mailbox_id)
    assert second["status"] == "ok"
    second_token = rep.ctx.box.decrypt(second["secret_enc"])
    assert second_token != first_token

    # The provider ends the token early (its expiry here says it is still good): Dovecot
    # refuses it, and the product refreshes and logs in again within the same sync.
    rep.idp.expire_access_tokens()
    await sync_service.sync_mailbox(rep.ctx, mailbox_id)
    assert rep.idp.refreshes == refreshes + 2
    assert (await stored(rep.ctx, mailbox_id))["status"] == "ok"
    assert "oauth2.token_refreshed" in caplog.text


async def test_a_revoked_grant_fails_once_and_reconnect_keeps_the_threads(rep: Rep) -> None:
    mailbox_id = await connect_with_provider(rep)
    before = await overview.thread_list(rep.ctx, user_id=rep.user_id)
    rep.idp.revoke_grants_of(rep.address)

    for _ in range(2):  # the worker's retries: still failed, one event
        with pytest.raises(MailAuthError, match="sign in again"):
            await sync_service.sync_mailbox(rep.ctx, mailbox_id)
    row = await stored(rep.ctx, mailbox_id)
    assert row["status"] == "failed"
    assert "sign in again with “Reconnect with Test IdP”" in str(row["status_message"])
    assert row["refresh_token_enc"] is None  # refused: deleted, not asked again
    log = await events.list_events(rep.ctx, user_id=rep.user_id, after=None, limit=50)
    assert [e.type for e in log].count("mailbox.failed") == 1

    page = await rep.page.get(f"/mailboxes/{mailbox_id}")
    assert "Reconnect with Test IdP" in page.text
    back = await sign_in_with_provider(
        rep.page, f"/mailboxes/{mailbox_id}", "/mailboxes/oauth2/oidc/start"
    )
    assert back.status == 303 and back.location == f"/mailboxes/{mailbox_id}?notice=reconnected"
    await asyncio.gather(*rep.page.tasks)
    row = await stored(rep.ctx, mailbox_id)
    assert row["status"] == "ok", row["status_message"]
    after = await overview.thread_list(rep.ctx, user_id=rep.user_id)
    assert [t.id for t in after.lines] == [t.id for t in before.lines]
    assert len(await mailboxes.list_mailboxes(rep.ctx, user_id=rep.user_id)) == 1


async def test_reconnect_as_another_account_is_refused(rep: Rep) -> None:
    mailbox_id = await connect_with_provider(rep)
    rep.idp.revoke_grants_of(rep.address)
    with pytest.raises(MailAuthError):
        await sync_service.sync_mailbox(rep.ctx, mailbox_id)
    rep.idp.signed_in_as = "someone-else@seller.example"
    back = await sign_in_with_provider(
        rep.page, f"/mailboxes/{mailbox_id}", "/mailboxes/oauth2/oidc/start"
    )
    assert back.status == 422
    assert f"this mailbox is {rep.address}" in back.text
    assert (await stored(rep.ctx, mailbox_id))["status"] == "failed"


async def test_tokens_are_not_readable_in_the_database_logs_or_api(
    rep: Rep, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mailbox_id = await connect_with_provider(rep)
    rep.idp.expire_access_tokens()
    await sync_service.sync_mailbox(rep.ctx, mailbox_id)  # a refresh: a second pair of tokens
    issued = [t for t in rep.idp.tokens if t.user == rep.address]
    secrets_issued = {t.refresh_token for t in issued} | {t.access_token for t in issued}
    secrets_issued.discard(None)
    assert len(secrets_issued) == 4

    token = await accounts.create_token_for(rep.ctx, user_id=rep.user_id, name="t")
    api = await rep.page.client.get(
        f"/api/v1/mailboxes/{mailbox_id}", headers={"Authorization": f"Bearer {token}"}
    )
    assert api.status_code == 200
    assert api.json()["imap"]["oauth2_provider"] == "oidc"
    page = await rep.page.client.get(f"/mailboxes/{mailbox_id}")
    # What this process logged, less the test provider's own lines (its request threads).
    logged = "\n".join(
        f"{r.name} {r.getMessage()}"
        for r in caplog.records
        if "process_request_thread" not in (r.threadName or "")
    )
    assert "oauth2.token_refreshed" in logged
    for secret in secrets_issued:
        assert secret is not None
        assert secret not in logged
        assert secret not in api.text
        assert secret not in page.text
    if database_url.startswith("sqlite"):
        raw = Path(database_url.split("///", 1)[1]).read_bytes()
        for secret in secrets_issued:
            assert secret is not None and secret.encode() not in raw


async def test_removing_the_mailbox_revokes_the_grant_at_the_provider(rep: Rep) -> None:
    mailbox_id = await connect_with_provider(rep)
    row = await stored(rep.ctx, mailbox_id)
    refresh = rep.ctx.box.decrypt(row["refresh_token_enc"])
    revocations = rep.idp.revocations
    removed = await rep.page.submit(
        f"/mailboxes/{mailbox_id}", f"/mailboxes/{mailbox_id}/delete", confirm="yes"
    )
    assert removed.status == 303
    assert rep.idp.revocations == revocations + 1
    assert all(t.refresh_revoked for t in rep.idp.tokens if t.refresh_token == refresh)
    assert await mailboxes.list_mailboxes(rep.ctx, user_id=rep.user_id) == []


async def test_a_password_in_place_of_the_sign_in_revokes_the_grant(rep: Rep) -> None:
    mailbox_id = await connect_with_provider(rep)
    row = await stored(rep.ctx, mailbox_id)
    refresh = rep.ctx.box.decrypt(row["refresh_token_enc"])
    revocations = rep.idp.revocations
    rep.dovecot.add_user(rep.address, "an-app-password-123")  # the server takes one as well
    await mailboxes.update_mailbox(
        rep.ctx,
        user_id=rep.user_id,
        mailbox_id=mailbox_id,
        changes={"secret": "an-app-password-123", "auth_method": "password"},
    )
    assert rep.idp.revocations == revocations + 1
    assert all(t.refresh_revoked for t in rep.idp.tokens if t.refresh_token == refresh)
    after = await stored(rep.ctx, mailbox_id)
    assert after["oauth2_provider"] is None and after["refresh_token_enc"] is None
    assert after["auth_method"] == "password"


async def test_the_api_answers_the_url_to_open_and_the_browser_finishes(rep: Rep) -> None:
    token = await accounts.create_token_for(rep.ctx, user_id=rep.user_id, name="t")
    auth = {"Authorization": f"Bearer {token}"}
    listed = await rep.page.client.get("/api/v1/mailboxes/oauth2/providers", headers=auth)
    assert listed.json() == {"items": [{"key": "oidc", "label": "Test IdP"}]}
    unknown = await rep.page.client.post(
        "/api/v1/mailboxes/oauth2/start", json={"provider": "google"}, headers=auth
    )
    assert unknown.status_code == 422
    assert "known: oidc" in unknown.json()["detail"]

    started = await rep.page.client.post(
        "/api/v1/mailboxes/oauth2/start", json={"provider": "oidc"}, headers=auth
    )
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["redirect_uri"] == f"{BASE}/oauth2/callback"
    assert body["url"].startswith(f"{rep.idp.base_url}/authorize?")
    query = parse_qs(urlsplit(body["url"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert "code_verifier" not in query
    back = await at_provider(body["url"])
    done = await rep.page.get(back.removeprefix(BASE))  # the rep's browser, signed in
    assert done.status == 303, done.text[:300]
    await asyncio.gather(*rep.page.tasks)
    (mailbox,) = await mailboxes.list_mailboxes(rep.ctx, user_id=rep.user_id)
    assert mailbox.status == "ok"


class XOAuth2Sink:
    """An SMTP server taking AUTH XOAUTH2 with the provider's live access tokens; it refuses
    the first login whatever the token (as a server that has just seen it expire)."""

    def __init__(self, idp: OAuthServer) -> None:
        self.idp = idp
        self.logins: list[tuple[str, bool]] = []
        self.tokens: list[str] = []  # the access token of each login, in order
        self.envelopes: list[Envelope] = []

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        fields = base64.b64decode(args[1]).decode().split("\x01")
        user = fields[0].removeprefix("user=")
        token = fields[1].removeprefix("auth=Bearer ")
        ok = bool(self.logins) and token in self.idp.active_access_tokens()
        self.logins.append((user, ok))
        self.tokens.append(token)
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


async def test_smtp_delivery_logs_in_with_the_same_grant(rep: Rep) -> None:
    mailbox_id = await connect_with_provider(rep)
    listed, _ = await drafts_service.list_drafts(rep.ctx, user_id=rep.user_id, state="pending")
    (draft,) = listed
    sink = XOAuth2Sink(rep.idp)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(sink, hostname="127.0.0.1", port=port, auth_require_tls=False)
    controller.start()
    try:
        # No SMTP password: the mailbox's sign-in is the SMTP login too.
        await draft_settings.put_delivery_settings(
            rep.ctx,
            user_id=rep.user_id,
            mailbox_id=mailbox_id,
            attach_originals=False,
            attachment_max_bytes=0,
            smtp=draft_settings.SmtpInput(
                host="127.0.0.1", port=port, security="plain", username=None, password=None
            ),
        )
        refreshes = rep.idp.refreshes
        sent = await drafts_service.approve_draft(
            rep.ctx, user_id=rep.user_id, draft_id=draft.id, delivery="smtp"
        )
    finally:
        controller.stop()
    assert sent.delivery == "smtp" and sent.sent_at is not None
    # Refused once, refreshed, then taken: one message, sent as the rep. The refusal itself
    # asks for a new token (the second login's); the token may also have come near its end
    # on the way (it lives 3 s here), which refreshes it once more on a slow machine.
    assert sink.logins == [(rep.address, False), (rep.address, True)]
    refused, taken = sink.tokens
    assert taken != refused
    assert rep.idp.refreshes >= refreshes + 1
    (envelope,) = sink.envelopes
    assert envelope.mail_from == rep.address


async def test_sign_ins_under_way_are_bounded_per_user(rep: Rep) -> None:
    token = await accounts.create_token_for(rep.ctx, user_id=rep.user_id, name="t")
    auth = {"Authorization": f"Bearer {token}"}
    answers = [
        (
            await rep.page.client.post(
                "/api/v1/mailboxes/oauth2/start", json={"provider": "oidc"}, headers=auth
            )
        ).status_code
        for _ in range(oauth2_service.MAX_STARTS_PER_USER + 1)
    ]
    assert answers == [200] * oauth2_service.MAX_STARTS_PER_USER + [429]


async def test_a_provider_that_cannot_be_reached_leaves_the_pages_working(
    database_url: str, idp_dovecot: DovecotServer
) -> None:
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    down = OAuthServer()
    down.base_url = f"http://127.0.0.1:{port}"
    ctx = Context.create(
        make_settings(database_url, public_url=BASE, **provider_settings(down, idp_dovecot))
    )
    await accounts.create_user(ctx, email="rep@seller.example", password=PASSWORD)
    page = browser(ctx, base_url=BASE)
    try:
        await page.sign_in("rep@seller.example", PASSWORD)
        shown = await page.get("/mailboxes/new")
        assert shown.status == 200 and "Connect with Test IdP" in shown.text
        pressed = await page.submit("/mailboxes/new", "/mailboxes/oauth2/oidc/start")
        assert pressed.status == 422
        assert "discovery document could not be read" in pressed.text
    finally:
        await page.aclose()
        await ctx.close()
