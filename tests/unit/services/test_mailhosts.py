"""IMAP and SMTP hosts pass the webhook URL guard (issue 15, item 3), proven over a stub
resolver: no test connects to a private, link-local or metadata address; a connection attempt
would fail the test."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from app.errors import MailHostRefused
from app.mail.imap import ImapAccount
from app.services import mailboxes
from app.services.context import Context
from app.services.mailhosts import MAIL_REFUSAL, checked_addresses
from app.webhooks.urlguard import UrlGuard
from tests.conftest import make_settings

ANSWERS = {
    "imap.corp.example": ["10.20.30.40"],
    "smtp.corp.example": ["172.16.5.5"],
    "nas.home.example": ["192.168.1.10"],
    "metadata.example": ["169.254.169.254"],
    "v6-link.example": ["fe80::1"],
    "v6-ula.example": ["fd00::25"],
    "mapped.example": ["::ffff:10.0.0.1"],
    "cgnat.example": ["100.64.1.1"],
    "mixed.example": ["93.184.216.34", "10.0.0.7"],  # every answer counts, not the first
    "imap.public.example": ["93.184.216.34", "2606:2800:220:1::1"],
}


async def stub_resolver(host: str, port: int) -> list[str]:
    if host not in ANSWERS:
        raise OSError(f"[Errno -2] Name or service not known: {host}")
    return ANSWERS[host]


@pytest.fixture
async def ctx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Context]:
    def no_connection(*args: object, **kwargs: object) -> socket.socket:
        raise AssertionError(f"a connection was attempted: {args}")

    def no_connect(_sock: socket.socket, address: object) -> None:
        raise AssertionError(f"a connection was attempted: {address}")

    # The addresses above are only ever answers of the stub resolver: whatever path a
    # connection would take, it fails the test before a packet leaves the machine.
    monkeypatch.setattr(socket, "create_connection", no_connection)
    monkeypatch.setattr(socket.socket, "connect", no_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connect)
    context = Context.create(make_settings("sqlite+aiosqlite://", imap_allow_private=False))
    context.mail_guard = UrlGuard(allow_private=False, resolver=stub_resolver, refusal=MAIL_REFUSAL)
    yield context
    await context.close()


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("imap.corp.example", "10.20.30.40 is a private address"),
        ("smtp.corp.example", "172.16.5.5 is a private address"),
        ("nas.home.example", "192.168.1.10 is a private address"),
        ("metadata.example", "169.254.169.254 is a link-local address"),
        ("v6-link.example", "fe80::1 is a link-local address"),
        ("v6-ula.example", "fd00::25 is a private address"),
        ("mapped.example", "10.0.0.1 is a private address (inside ::ffff:a00:1)"),
        ("cgnat.example", "100.64.1.1 is not a public address"),
        ("mixed.example", "10.0.0.7 is a private address"),
        ("169.254.169.254", "link-local"),  # literals: checked without DNS
        ("10.1.2.3", "private"),
        ("127.0.0.2", "loopback"),
        ("::1", "loopback"),
    ],
)
async def test_private_hosts_are_refused_before_any_connection(
    ctx: Context, host: str, problem: str
) -> None:
    with pytest.raises(MailHostRefused) as caught:
        await checked_addresses(ctx, host, 993, field="imap.host")
    assert caught.value.message.startswith("imap.host: ")
    assert problem in caught.value.message
    assert "RADIOSILENCE_IMAP_ALLOW_PRIVATE=true" in caught.value.message
    account = ImapAccount(host=host, port=993, security="tls", username="u", secret="p")
    with pytest.raises(MailHostRefused):  # and the connection test never connects
        await mailboxes.test_connection(ctx, account, user_id=1)


async def test_public_hosts_pass_with_every_address_checked(ctx: Context) -> None:
    assert await checked_addresses(ctx, "IMAP.Public.Example.", 993, field="imap.host") == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


async def test_the_operator_may_allow_private_hosts(ctx: Context) -> None:
    ctx.settings = ctx.settings.model_copy(update={"imap_allow_private": True})
    ctx.mail_guard = UrlGuard(allow_private=True, resolver=stub_resolver, refusal=MAIL_REFUSAL)
    assert await checked_addresses(ctx, "metadata.example", 993, field="imap.host") == [
        "169.254.169.254"
    ]
