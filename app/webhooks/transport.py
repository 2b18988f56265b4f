"""An httpx transport for webhook deliveries: HTTP/1.1 over connections to checked addresses.

Each request's host is resolved and checked by the `UrlGuard`, and the TCP connection goes to
that very address while the Host header and TLS SNI (and certificate check) keep the name from
the URL. Connections are kept alive per (scheme, host, port) and reused. The response body is
read up to `max_body` bytes only: a delivery needs the status and the start of the body.

It speaks h11 over asyncio streams directly: httpcore's pool costs several times more CPU per
request, and throughput of signed deliveries is a product bar.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import h11
import httpx

from app.webhooks.urlguard import UrlGuard, UrlRefused, host_and_port, parse_target

Opener = Callable[
    [str, int, ssl.SSLContext | None, str | None],
    Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
]
CONNECT_TIMEOUT = 5.0
KEEPALIVE_SECONDS = 4.0  # below the 5 s idle timeout of common servers (uvicorn, nginx 75 s)
MAX_IDLE_PER_ORIGIN = 32
MAX_BODY = 64 * 1024
READ_CHUNK = 65536


async def open_stream(
    address: str, port: int, tls: ssl.SSLContext | None, server_hostname: str | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(
        address, port, ssl=tls, server_hostname=server_hostname, limit=READ_CHUNK
    )


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


@dataclass
class _Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    reusable: bool


class PinnedTransport(httpx.AsyncBaseTransport):
    def __init__(
        self,
        guard: UrlGuard,
        *,
        ssl_context: ssl.SSLContext | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
        max_body: int = MAX_BODY,
        opener: Opener = open_stream,
    ) -> None:
        self._guard = guard
        self._ssl = ssl_context or ssl.create_default_context()
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive_seconds
        self._max_body = max_body
        self._open = opener
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported scheme {url.scheme!r}", request=request)
        key = (url.scheme, *host_and_port(url))
        body = await request.aread()
        payload = self._encode(request, body)

        answer = None
        conn = self._checkout(key)
        if conn is not None:
            try:
                answer = await self._exchange(conn, payload, request, reused=True)
            except _StaleConnection:
                answer = None  # the server closed it while idle: one fresh try below
        if answer is None:
            conn = await self._connect(request)
            try:
                answer = await self._exchange(conn, payload, request, reused=False)
            except _StaleConnection as exc:  # pragma: no cover - only raised for reused ones
                raise httpx.RemoteProtocolError(str(exc), request=request) from None
        if answer.reusable:
            assert conn is not None
            self._checkin(key, conn)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            content=answer.body,
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await conn.writer.wait_closed()

    @staticmethod
    def _encode(request: httpx.Request, body: bytes) -> list[h11.Request | h11.Data]:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() != b"transfer-encoding"]
        if not any(k.lower() == b"content-length" for k, _ in headers):
            headers.append((b"content-length", str(len(body)).encode()))
        return [
            h11.Request(method=request.method, target=request.url.raw_path, headers=headers),
            h11.Data(data=body),
        ]

    def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        pool = self._idle.get(key)
        now = time.monotonic()
        while pool:
            conn = pool.pop()
            if now - conn.idle_since < self._keepalive and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    def _checkin(self, key: tuple[str, str, int], conn: _Connection) -> None:
        if self._closed:
            conn.close()
            return
        conn.h11.start_next_cycle()
        conn.idle_since = time.monotonic()
        pool = self._idle.setdefault(key, [])
        if len(pool) >= MAX_IDLE_PER_ORIGIN:
            conn.close()
        else:
            pool.append(conn)

    async def _connect(self, request: httpx.Request) -> _Connection:
        try:
            # The URL's form again (settings may have changed since it was subscribed), then
            # its addresses, resolved once: the connection goes to one of these.
            target = parse_target(request.url, allow_private=self._guard.allow_private)
            addresses = await self._guard.addresses(target.host, target.port)
        except UrlRefused as exc:
            raise httpx.ConnectError(str(exc), request=request) from None
        host, port = target.host, target.port
        tls = self._ssl if target.scheme == "https" else None
        errors = []
        try:
            async with asyncio.timeout(self._connect_timeout):
                for address in addresses:  # only checked addresses; the name is not looked up
                    try:
                        reader, writer = await self._open(
                            str(address), port, tls, host if tls else None
                        )
                        return _Connection(reader, writer)
                    except (OSError, ssl.SSLError) as exc:
                        errors.append(f"{address}: {exc}")
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"could not connect to {host}:{port} within {self._connect_timeout:g} s",
                request=request,
            ) from None
        raise httpx.ConnectError(
            f"could not connect to {host}:{port}: " + "; ".join(errors), request=request
        )

    async def _exchange(
        self,
        conn: _Connection,
        payload: list[h11.Request | h11.Data],
        request: httpx.Request,
        *,
        reused: bool,
    ) -> _Answer:
        """Send one request and read its answer; a reused connection that fails before any
        byte of the answer raises _StaleConnection (safe to retry: nothing was processed)."""
        received = False
        try:
            data = b"".join(conn.h11.send(event) or b"" for event in payload)
            data += conn.h11.send(h11.EndOfMessage()) or b""
            conn.writer.write(data)
            await conn.writer.drain()
            status, headers, chunks, size = 0, [], [], 0
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    chunk = await conn.reader.read(READ_CHUNK)
                    if chunk:
                        received = True
                    elif reused and not received:
                        raise _StaleConnection("the server closed the kept-alive connection")
                    conn.h11.receive_data(chunk)
                elif isinstance(event, h11.Response):
                    status, headers = event.status_code, list(event.headers)
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                    size += len(event.data)
                    if size >= self._max_body:  # enough to log; drop the rest with the link
                        conn.close()
                        body = b"".join(chunks)[: self._max_body]
                        return _Answer(status, headers, body, reusable=False)
                elif isinstance(event, h11.EndOfMessage):
                    break
                elif isinstance(event, h11.ConnectionClosed):
                    raise h11.RemoteProtocolError("the server closed the connection early")
                # h11.InformationalResponse (100 Continue): keep reading
        except _StaleConnection:
            conn.close()
            raise
        except h11.RemoteProtocolError as exc:
            conn.close()
            raise httpx.RemoteProtocolError(f"bad answer from the server: {exc}") from None
        except h11.LocalProtocolError as exc:
            conn.close()
            raise httpx.LocalProtocolError(str(exc)) from None
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            if reused and not received:
                raise _StaleConnection(str(exc)) from None
            raise httpx.ReadError(f"the connection failed: {exc}", request=request) from None
        except BaseException:  # cancelled (e.g. the total timeout) mid-exchange
            conn.close()
            raise
        reusable = conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE
        if not reusable:
            conn.close()
        return _Answer(status, headers, b"".join(chunks), reusable=reusable)


class _StaleConnection(Exception):
    pass
