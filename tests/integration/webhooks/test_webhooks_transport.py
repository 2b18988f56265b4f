"""The pinned transport against a real HTTP server on loopback: it connects only to addresses
the guard checked, keeps Host/SNI, reuses connections and survives a server closing them."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.webhooks.transport import PinnedTransport, open_stream
from app.webhooks.urlguard import UrlGuard
from tests.support.webhook_consumer import WebhookConsumer

pytestmark = pytest.mark.integration


@pytest.fixture
def server() -> Iterator[WebhookConsumer]:
    with WebhookConsumer(require_signature=False) as consumer:
        consumer.respond = lambda _r: (200, {}, b"ok")
        yield consumer


def post(url: str) -> httpx.Request:
    return httpx.Request("POST", url, content=b"{}", headers={"content-type": "application/json"})


class RecordingOpener:
    """Connects to the plain-HTTP test server whatever it is asked (address, TLS), and
    remembers what was asked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.calls: list[tuple[str, int, str | None]] = []

    async def __call__(
        self, address: str, port: int, tls: ssl.SSLContext | None, server_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.calls.append((address, port, server_hostname))
        return await open_stream("127.0.0.1", self.port, None, None)


@pytest.fixture
async def rebinding(
    server: WebhookConsumer,
) -> AsyncIterator[tuple[PinnedTransport, RecordingOpener, list[str]]]:
    answers = [["93.184.216.34"], ["127.0.0.1"]]  # the second lookup rebinds to loopback
    lookups: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        lookups.append(host)
        return answers[min(len(lookups), len(answers)) - 1]

    opener = RecordingOpener(int(server.url.rsplit(":", 1)[1]))
    transport = PinnedTransport(
        UrlGuard(allow_private=False, resolver=resolve, cache_seconds=0), opener=opener
    )
    yield transport, opener, lookups
    await transport.aclose()


async def test_it_connects_to_the_checked_address_and_never_to_a_rebound_one(
    server: WebhookConsumer, rebinding: tuple[PinnedTransport, RecordingOpener, list[str]]
) -> None:
    transport, opener, lookups = rebinding
    answer = await transport.handle_async_request(post("https://hooks.example.com:8443/in"))
    assert answer.status_code == 200 and answer.content == b"ok"
    assert opener.calls == [("93.184.216.34", 8443, "hooks.example.com")]
    assert lookups == ["hooks.example.com"]  # resolved once for this connection
    (request,) = server.received
    assert request.path == "/in"
    with pytest.raises(httpx.ConnectError, match="must start with https"):
        await transport.handle_async_request(post("http://hooks.example.com/in"))

    # The kept-alive connection (to the checked address) is reused without a new lookup...
    await transport.handle_async_request(post("https://hooks.example.com:8443/again"))
    assert opener.calls == [("93.184.216.34", 8443, "hooks.example.com")]
    # ...and a new connection looks up again: the rebound answer is refused, nothing connects.
    await transport.aclose()
    fresh = PinnedTransport(transport._guard, opener=opener)
    try:
        with pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.1 is a loopback address"):
            await fresh.handle_async_request(post("https://hooks.example.com:8443/in"))
    finally:
        await fresh.aclose()
    assert len(opener.calls) == 1


async def test_tls_goes_to_the_pinned_address_with_the_name_for_sni() -> None:
    calls: list[tuple[str, int, str | None]] = []

    async def opener(
        address: str, port: int, tls: ssl.SSLContext | None, server_hostname: str | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        calls.append((address, port, server_hostname))
        assert tls is not None and tls.check_hostname and tls.verify_mode is ssl.CERT_REQUIRED
        raise ssl.SSLCertVerificationError("certificate verify failed (test)")

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    transport = PinnedTransport(UrlGuard(allow_private=False, resolver=resolve), opener=opener)
    try:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await transport.handle_async_request(post("https://crm.example.com/hooks"))
    finally:
        await transport.aclose()
    assert calls == [("93.184.216.34", 443, "crm.example.com")]


async def test_the_host_header_keeps_the_name(server: WebhookConsumer) -> None:
    transport = PinnedTransport(UrlGuard(allow_private=True))
    port = server.url.rsplit(":", 1)[1]
    try:
        answer = await transport.handle_async_request(post(f"http://localhost:{port}/h"))
    finally:
        await transport.aclose()
    assert answer.status_code == 200
    assert server.received[0].host == f"localhost:{port}"


async def test_a_connection_closed_by_the_server_while_idle_is_replaced(
    server: WebhookConsumer,
) -> None:
    transport = PinnedTransport(UrlGuard(allow_private=True))
    try:
        assert (await transport.handle_async_request(post(server.url + "/1"))).status_code == 200
        # The server hangs up the kept-alive connection ("Connection: close" on the next).
        server.respond = lambda _r: (200, {"Connection": "close"}, b"bye")
        assert (await transport.handle_async_request(post(server.url + "/2"))).status_code == 200
        server.respond = lambda _r: (200, {}, b"ok")
        assert (await transport.handle_async_request(post(server.url + "/3"))).status_code == 200
    finally:
        await transport.aclose()
    assert [r.path for r in server.received] == ["/1", "/2", "/3"]


async def test_only_the_start_of_a_huge_answer_is_read(server: WebhookConsumer) -> None:
    server.respond = lambda _r: (500, {}, b"x" * 1_000_000)
    transport = PinnedTransport(UrlGuard(allow_private=True), max_body=1000)
    try:
        answer = await transport.handle_async_request(post(server.url + "/big"))
    finally:
        await transport.aclose()
    assert answer.status_code == 500 and len(answer.content) == 1000


async def test_a_refused_connection_is_a_connect_error() -> None:
    transport = PinnedTransport(UrlGuard(allow_private=True))
    try:
        with pytest.raises(httpx.ConnectError, match=r"could not connect to 127\.0\.0\.1:9"):
            await transport.handle_async_request(post("http://127.0.0.1:9/"))
    finally:
        await transport.aclose()
