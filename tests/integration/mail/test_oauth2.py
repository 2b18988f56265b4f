"""XOAUTH2 against a real Dovecot that checks tokens at an RFC 7662 introspection endpoint,
and the refresh hook (RADIOSILENCE_OAUTH2_REFRESH_COMMAND) when the stored token expires."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from app.errors import MailAuthError
from app.services import accounts, events, mailboxes
from app.services import drafts as drafts_service
from app.services import sync as sync_service
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage.engine import reading
from tests.conftest import make_settings
from tests.factories import make_message
from tests.support.dovecot import DovecotServer, start_dovecot

pytestmark = pytest.mark.integration
USER = "oauth-rep@seller.example"


class TokenIssuer:
    """The identity provider's side: which access tokens are active, for whom."""

    def __init__(self) -> None:
        self.active: dict[str, str] = {}
        self.lock = threading.Lock()

    def handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Introspect(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                token = parse_qs(self.rfile.read(length).decode()).get("token", [""])[0]
                with issuer.lock:
                    user = issuer.active.get(token)
                answer = {"active": "true", "username": user} if user else {"active": "false"}
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        return Introspect


@pytest.fixture(scope="module")
def issuer() -> Iterator[TokenIssuer]:
    yield TokenIssuer()


@pytest.fixture(scope="module")
def oauth_dovecot(issuer: TokenIssuer) -> Iterator[DovecotServer]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), issuer.handler())
    threading.Thread(target=http.serve_forever, daemon=True).start()
    root = Path(tempfile.mkdtemp(prefix="radiosilence-oauth-"))
    os.chmod(root, 0o755)
    server = start_dovecot(
        root / "dovecot", oauth2_introspection_url=f"http://127.0.0.1:{http.server_port}/"
    )
    server.add_user(USER, "unused-password-1")  # the mail home; logins here use tokens
    try:
        yield server
    finally:
        server.close()
        http.shutdown()
        http.server_close()


def refresh_script(tmp_path: Path, *, token: str | None, fail: str | None = None) -> str:
    """An operator's refresh command: prints `token`, or fails with `fail` on stderr."""
    script = tmp_path / "refresh-token.py"
    if fail is not None:
        body = f"import sys\nsys.stderr.write({fail!r})\nsys.exit(3)\n"
    else:
        body = (
            f"import sys\nassert sys.argv[-1] == {USER!r}\nprint('refreshing')\nprint({token!r})\n"
        )
    script.write_text(body)
    return f"{sys.executable} {script}"


async def make_ctx(database_url: str, command: str | None) -> Context:
    return Context.create(make_settings(database_url, oauth2_refresh_command=command))


@pytest.fixture
async def owner(
    database_url: str, oauth_dovecot: DovecotServer, issuer: TokenIssuer
) -> AsyncIterator[tuple[str, int, int]]:
    """A user with an XOAUTH2 mailbox whose first token is valid: (url, user id, mailbox id)."""
    issuer.active.clear()
    issuer.active["token-one"] = USER
    oauth_dovecot.append(
        USER,
        "Sent",
        make_message(
            from_=USER,
            to=["buyer@customer.example"],
            subject="Proposal",
            date=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
            message_id=f"p-{os.urandom(4).hex()}@seller.example",
        ),
    )
    ctx = await make_ctx(database_url, None)
    try:
        user_id = await accounts.create_user(ctx, email=USER, password="pw-123456789")
        data = mailboxes.MailboxInput(
            name="Work",
            host=oauth_dovecot.host,
            port=oauth_dovecot.port,
            security="plain",
            username=USER,
            secret="token-one",
            auth_method="oauth2",
            addresses=[USER],
            timezone="UTC",
            holiday_country=None,
        )
        mailbox_id = await mailboxes.create_mailbox(ctx, user_id=user_id, data=data)
    finally:
        await ctx.close()
    yield database_url, user_id, mailbox_id


async def stored_secret(ctx: Context, mailbox_id: int) -> str:
    async with reading(ctx.engine) as conn:
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert row is not None
    return ctx.box.decrypt(row["secret_enc"])


async def test_an_expired_token_is_renewed_by_the_hook_and_stored_encrypted(
    owner: tuple[str, int, int],
    issuer: TokenIssuer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, user_id, mailbox_id = owner
    issuer.active.clear()  # token-one expired
    issuer.active["token-two"] = USER
    ctx = await make_ctx(url, refresh_script(tmp_path, token="token-two"))
    caplog.set_level(logging.DEBUG)
    try:
        outcome = await sync_service.sync_mailbox(ctx, mailbox_id)
        assert outcome.new_messages >= 1
        assert await stored_secret(ctx, mailbox_id) == "token-two"
        view = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
        assert view.status == "ok"
        # A second sync logs in with the stored token: the hook is not needed again.
        again = await sync_service.sync_mailbox(ctx, mailbox_id)
        assert again.new_messages == 0
    finally:
        await ctx.close()
    assert "token-two" not in caplog.text
    assert "oauth2.token_renewed" in caplog.text
    if url.startswith("sqlite"):
        raw = Path(url.split("///", 1)[1]).read_bytes()
        assert b"token-two" not in raw and b"token-one" not in raw


async def test_a_failing_hook_fails_the_mailbox_once_with_its_words(
    owner: tuple[str, int, int], issuer: TokenIssuer, tmp_path: Path
) -> None:
    url, user_id, mailbox_id = owner
    issuer.active.clear()
    ctx = await make_ctx(url, refresh_script(tmp_path, token=None, fail="refresh token revoked"))
    try:
        for _ in range(2):
            with pytest.raises(MailAuthError, match="refresh token revoked"):
                await sync_service.sync_mailbox(ctx, mailbox_id)
        view = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
        assert view.status == "failed"
        assert "refresh command" in view.status_message
        assert "exit 3" in view.status_message
        assert "refresh token revoked" in view.status_message
        log = await events.list_events(ctx, user_id=user_id, after=None, limit=50)
        assert [e["type"] for e in log].count("mailbox.failed") == 1
        assert await stored_secret(ctx, mailbox_id) == "token-one"
    finally:
        await ctx.close()


async def test_without_a_hook_a_refused_token_says_to_check_it(
    owner: tuple[str, int, int], issuer: TokenIssuer
) -> None:
    url, user_id, mailbox_id = owner
    issuer.active.clear()
    ctx = await make_ctx(url, None)
    try:
        with pytest.raises(MailAuthError, match="check the OAuth2 token"):
            await sync_service.sync_mailbox(ctx, mailbox_id)
        view = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
        assert view.status == "failed"
        assert "check the OAuth2 token" in view.status_message
    finally:
        await ctx.close()


def counting_refresh_script(tmp_path: Path, runs: Path, tokens: list[str]) -> str:
    """A refresh command that notes each run in `runs` and prints the next of `tokens`."""
    script = tmp_path / "refresh-counting.py"
    script.write_text(
        "import pathlib\n"
        f"runs = pathlib.Path({str(runs)!r})\n"
        "done = runs.read_text() if runs.exists() else ''\n"
        "runs.write_text(done + 'run\\n')\n"
        f"tokens = {tokens!r}\n"
        "print(tokens[min(done.count('run'), len(tokens) - 1)])\n"
    )
    return f"{sys.executable} {script}"


async def test_approving_logs_in_with_the_token_its_own_sync_renewed(
    owner: tuple[str, int, int], issuer: TokenIssuer, tmp_path: Path
) -> None:
    url, user_id, mailbox_id = owner
    ctx = await make_ctx(url, None)
    try:
        await sync_service.sync_mailbox(ctx, mailbox_id)  # with token-one: makes the draft
        listed, _ = await drafts_service.list_drafts(ctx, user_id=user_id, state="pending")
    finally:
        await ctx.close()
    draft = next(d for d in listed if d.mailbox_id == mailbox_id)
    issuer.active.clear()  # token-one expired
    issuer.active.update({"token-two": USER, "token-three": USER})
    runs = tmp_path / "runs.txt"
    ctx = await make_ctx(url, counting_refresh_script(tmp_path, runs, ["token-two", "token-three"]))
    try:
        approved = await drafts_service.approve_draft(ctx, user_id=user_id, draft_id=draft.id)
        assert approved.state == "approved"
        assert approved.imap_folder == "Drafts"
        # The sync before the delivery renewed and stored the token; the delivery logged in
        # with that one instead of renewing again with the row read before the sync.
        assert runs.read_text().count("run") == 1
        assert await stored_secret(ctx, mailbox_id) == "token-two"
    finally:
        await ctx.close()
