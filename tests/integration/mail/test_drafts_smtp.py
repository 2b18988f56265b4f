"""Sending an approved draft over SMTP, to an aiosmtpd sink on loopback, with a copy in Sent."""

from __future__ import annotations

import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from typing import Any, Literal

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from app.errors import MailAuthError, MailConnectionError, MailTLSError
from app.mail.smtp import SmtpAccount, send_message
from app.services import sync as sync_service
from app.services.context import Context
from tests.factories import PROSPECT, REP, ImapUser, connect, now_utc, populate
from tests.support.api import api_client, only_draft
from tests.support.dovecot import DovecotServer

pytestmark = pytest.mark.integration
SMTP_USER, SMTP_PASSWORD = "rep", "smtp-s3cret"


class Sink:
    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


def _authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode(),
        auth_data.password.decode(),
    ) == (SMTP_USER, SMTP_PASSWORD)
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler = Sink()
    port = _free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticate,
        auth_require_tls=False,  # loopback test server without TLS
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
async def api(ctx: Context, imap_user: ImapUser) -> AsyncIterator[tuple[httpx.AsyncClient, int]]:
    populate(imap_user, now_utc())
    _, mailbox_id = await connect(ctx, imap_user)
    await sync_service.sync_mailbox(ctx, mailbox_id)
    async with await api_client(ctx, "owner@seller.example", create_user=False) as client:
        yield client, mailbox_id


async def test_approve_with_smtp_sends_once_and_files_a_copy_in_sent(
    ctx: Context,
    imap_user: ImapUser,
    sink: tuple[Sink, int],
    api: tuple[httpx.AsyncClient, int],
) -> None:
    handler, port = sink
    client, mailbox_id = api
    draft = await only_draft(client)
    refused = await client.post(f"/api/v1/drafts/{draft['id']}/approve", json={"delivery": "smtp"})
    assert refused.status_code == 409
    assert "SMTP sending is not enabled" in refused.json()["detail"]

    settings = {
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
        }
    }
    saved = await client.put(f"/api/v1/mailboxes/{mailbox_id}/draft-settings", json=settings)
    assert saved.status_code == 200, saved.text
    assert saved.json()["smtp"]["password_set"] is True
    assert SMTP_PASSWORD not in saved.text
    shown = await client.get(f"/api/v1/mailboxes/{mailbox_id}/draft-settings")
    assert shown.json() == saved.json()

    sent = await client.post(f"/api/v1/drafts/{draft['id']}/approve", json={"delivery": "smtp"})
    assert sent.status_code == 200, sent.text
    assert sent.json()["delivery"] == "smtp" and sent.json()["sent_at"] is not None
    (envelope,) = handler.envelopes
    assert envelope.mail_from == REP
    assert envelope.rcpt_tos == [PROSPECT]
    assert isinstance(envelope.content, bytes)
    msg = message_from_bytes(envelope.content, policy=policy.default)
    assert msg["Message-ID"] == draft["message_id"]
    assert msg["In-Reply-To"] == "<q1@seller.example>"

    # Never sent twice: approving again is refused, the sink got one message.
    again = await client.post(f"/api/v1/drafts/{draft['id']}/approve", json={"delivery": "smtp"})
    assert again.status_code == 409
    assert len(handler.envelopes) == 1

    with imap_user.server.imap(imap_user.username) as conn:
        conn.select('"Sent"', readonly=True)
        _, data = conn.uid("SEARCH", "HEADER", "Message-ID", draft["message_id"])
        sent_copies = data[0].split()
    assert len(sent_copies) == 1
    assert imap_user.server.folder_uids(imap_user.username, "Drafts") == []
    # The copy in Sent is the rep's own new e-mail: the thread waits for an answer again.
    await sync_service.sync_mailbox(ctx, mailbox_id)
    thread = await client.get(f"/api/v1/threads/{draft['thread_id']}")
    assert thread.json()["state"] == "awaiting_reply"


async def test_smtp_password_is_stored_encrypted(
    ctx: Context, api: tuple[httpx.AsyncClient, int], sink: tuple[Sink, int], database_url: str
) -> None:
    client, mailbox_id = api
    _, port = sink
    body = {
        "smtp": {
            "host": "127.0.0.1",
            "port": port,
            "security": "plain",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
        },
        "attach_originals": True,
        "attachment_max_bytes": 1000,
    }
    assert (
        await client.put(f"/api/v1/mailboxes/{mailbox_id}/draft-settings", json=body)
    ).status_code == 200
    async with ctx.engine.connect() as conn:
        from sqlalchemy import select

        from app.storage.tables import draft_settings

        row = (await conn.execute(select(draft_settings))).mappings().one()
    assert SMTP_PASSWORD.encode() not in row["smtp_secret_enc"]
    assert ctx.box.decrypt(row["smtp_secret_enc"]) == SMTP_PASSWORD
    # Updating without a password keeps the stored one; null turns SMTP off.
    del body["smtp"]["password"]  # type: ignore[attr-defined]
    kept = await client.put(f"/api/v1/mailboxes/{mailbox_id}/draft-settings", json=body)
    assert kept.json()["smtp"]["password_set"] is True
    off = await client.put(f"/api/v1/mailboxes/{mailbox_id}/draft-settings", json={"smtp": None})
    assert off.json() == {"attach_originals": False, "attachment_max_bytes": 10485760, "smtp": None}
    plain_far = {"smtp": {"host": "smtp.example.com", "port": 25, "security": "plain"}}
    refused = await client.put(f"/api/v1/mailboxes/{mailbox_id}/draft-settings", json=plain_far)
    assert refused.status_code == 422
    assert "loopback" in refused.json()["detail"]


def test_send_message_maps_errors(sink: tuple[Sink, int]) -> None:
    _, port = sink
    wrong = SmtpAccount(
        host="127.0.0.1", port=port, security="plain", username=SMTP_USER, password="nope"
    )
    with pytest.raises(MailAuthError, match="refused the login"):
        send_message(
            wrong, b"Subject: x\r\n\r\nx\r\n", sender=REP, recipients=[PROSPECT], timeout=5
        )
    closed = SmtpAccount(
        host="127.0.0.1", port=_free_port(), security="plain", username=None, password=None
    )
    with pytest.raises(MailConnectionError, match="could not connect to an SMTP server"):
        send_message(
            closed, b"Subject: x\r\n\r\nx\r\n", sender=REP, recipients=[PROSPECT], timeout=5
        )
    assert "nope" not in repr(wrong)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_send_message_over_verified_tls(
    dovecot: DovecotServer, security: Literal["starttls", "tls"]
) -> None:
    """STARTTLS and implicit TLS, with the certificate checked against the test CA (the
    Dovecot fixture's, issued for 127.0.0.1); an unknown CA is refused."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_dir = dovecot.root / "tls"
    context.load_cert_chain(tls_dir / "server.pem", tls_dir / "server.key")
    handler = Sink()
    port = _free_port()
    options: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd does not count implicit TLS as TLS for AUTH: the socket is TLS all the same.
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=_authenticate, **options
    )
    controller.start()
    try:
        account = SmtpAccount(
            host="127.0.0.1",
            port=port,
            security=security,
            username=SMTP_USER,
            password=SMTP_PASSWORD,
        )
        message = b"Subject: Re: Proposal\r\n\r\nAny news?\r\n"
        # Implicit TLS fails before the server has spoken: the one answer of every failed
        # connection; after STARTTLS the certificate is named.
        refused = (
            pytest.raises(MailTLSError, match="could not be verified")
            if security == "starttls"
            else pytest.raises(MailConnectionError, match="refused or TLS failed")
        )
        with refused:
            send_message(account, message, sender=REP, recipients=[PROSPECT], timeout=5)
        send_message(
            account,
            message,
            sender=REP,
            recipients=[PROSPECT],
            ca_file=dovecot.ca_cert_path,
            timeout=5,
        )
    finally:
        controller.stop()
    (envelope,) = handler.envelopes
    assert envelope.rcpt_tos == [PROSPECT]
