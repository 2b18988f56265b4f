"""A real HTTP webhook consumer on loopback that verifies every request with `standardwebhooks`.

It runs `http.server` (keep-alive, one thread per connection) in a background thread, records
what it received, and answers as the test tells it: 400 for a request that fails verification,
else `respond(request)` (200 by default).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    path: str
    host: str
    msg_id: str
    timestamp: str
    signature: str
    body: bytes
    verified: bool
    error: str | None

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def headers(self) -> dict[str, str]:
        return {
            "webhook-id": self.msg_id,
            "webhook-timestamp": self.timestamp,
            "webhook-signature": self.signature,
        }


Answer = tuple[int, dict[str, str], bytes]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (as the sender does with huge bodies) is fine."""


def ok(_request: Received) -> Answer:
    return 200, {}, b"ok"


@dataclass
class WebhookConsumer:
    secret: str | None = None
    respond: Callable[[Received], Answer] = ok
    delay: float = 0.0  # seconds each answer takes
    require_signature: bool = True
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        consumer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 5  # an idle kept-alive connection ends its thread after this

            def do_POST(self) -> None:
                consumer._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> WebhookConsumer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("content-length", "0")))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        error = None
        try:
            if self.secret is None:
                raise WebhookVerificationError("the consumer has no secret yet")
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as exc:
            error = str(exc)
        request = Received(
            path=handler.path,
            host=headers.get("host", ""),
            msg_id=headers.get("webhook-id", ""),
            timestamp=headers.get("webhook-timestamp", ""),
            signature=headers.get("webhook-signature", ""),
            body=body,
            verified=error is None,
            error=error,
        )
        with self.lock:
            self.received.append(request)
            self.in_flight += 1
        try:
            if self.delay:
                time.sleep(self.delay)
            if error is not None and self.require_signature:
                status, extra, payload = 400, {}, f"signature rejected: {error}".encode()
            else:
                status, extra, payload = self.respond(request)
            handler.send_response(status)
            for name, value in extra.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        finally:
            with self.lock:
                self.in_flight -= 1

    def verified(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.verified]

    def verified_ids(self) -> set[str]:
        return {r.msg_id for r in self.verified()}
