"""Signed webhook deliveries per second, one worker, to a local consumer on loopback.

Bar (PRODUCT.md): >= 1,000 deliveries/s. 10,000 events go through the outbox (fanned out to
one subscription), then one dispatcher — the production loop: claim with a lease, sign, POST
through the SSRF-pinned transport, record every attempt — delivers them all. The consumer runs
in its own process and verifies every request with the `standardwebhooks` package.

Baselines measured in the same run against the same consumer, same bodies, same concurrency:
a bare `httpx.AsyncClient` posting them (what "just use httpx" would give), and our transport
alone without the database (what claiming and recording cost).
Run: .venv/bin/python bench/webhook_bench.py [--events N] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.services import accounts, webhooks
from app.services.context import Context
from app.storage import outbox
from app.storage import webhooks as store
from app.storage.engine import reading
from app.storage.migrate import upgrade
from app.webhooks.deliver import PER_ENDPOINT
from app.webhooks.signing import encode_body, request_headers, secret_key
from app.webhooks.transport import PinnedTransport
from app.webhooks.urlguard import UrlGuard

BAR = 1000
PAYLOAD = {
    "schema_version": 1,
    "thread": {
        "id": 1,
        "mailbox_id": 1,
        "subject": "Proposal for Buyer Inc — pricing and next steps",
        "state": "quiet",
        "reason": "quiet: 3 business days since your e-mail of Fri 14:02 Europe/Berlin",
        "needs_response": False,
        "message_ids": ["<q1@seller.example>", "<q2@seller.example>"],
        "last_outbound_at": "2026-11-20T14:02:00+00:00",
        "last_inbound_at": None,
        "next_check_at": "2026-11-25T14:02:00+00:00",
        "followups_sent": 0,
    },
}

CONSUMER = r"""
import asyncio, json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

hook = Webhook(sys.argv[2])
stats = {"verified": 0, "rejected": 0, "events": 0}
seen = set()

class Consumer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            size = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + size:
                return
            body = self.buffer[end + 4 : end + 4 + size]
            self.buffer = self.buffer[end + 4 + size :]
            if head[0].startswith("GET /stats"):
                answer, status = json.dumps(stats).encode(), b"200 OK"
            else:
                try:
                    hook.verify(body, headers, json_parse=False)
                    stats["verified"] += 1
                    if headers["webhook-id"].startswith("evt_"):
                        seen.add(headers["webhook-id"])
                        stats["events"] = len(seen)
                    answer, status = b"ok", b"200 OK"
                except WebhookVerificationError as exc:
                    stats["rejected"] += 1
                    answer, status = str(exc).encode(), b"400 Bad Request"
            self.transport.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer
            )

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Consumer, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def start_consumer(secret: str) -> tuple[subprocess.Popen[str], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, str(port), secret], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc, f"http://127.0.0.1:{port}"


async def consumer_stats(url: str) -> dict[str, int]:
    async with httpx.AsyncClient() as client:
        stats: dict[str, int] = (await client.get(url + "/stats")).json()
        return stats


async def post_all(
    transport: httpx.AsyncBaseTransport | None, url: str, secret: str, n: int
) -> float:
    """Signed POSTs of `n` bodies with PER_ENDPOINT in flight; returns requests per second."""
    key = secret_key(secret)
    bodies = [encode_body("thread.quiet", datetime.now(UTC), {**PAYLOAD, "n": i}) for i in range(n)]
    work = iter(enumerate(bodies))
    limits = httpx.Limits(max_connections=PER_ENDPOINT, max_keepalive_connections=PER_ENDPOINT)
    async with httpx.AsyncClient(transport=transport, limits=limits, timeout=15) as client:

        async def worker() -> None:
            for i, body in work:
                headers = request_headers([key], f"base_{i}", int(time.time()), body)
                answer = await client.post(url + "/hook", content=body, headers=headers)
                assert answer.status_code == 200, answer.text

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(PER_ENDPOINT)))
        return n / (time.perf_counter() - started)


async def run(database_url: str, n_events: int) -> dict[str, float | int | str]:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        secret_key="bench-secret-key-0123456789abcdefghijklmnop",
        webhook_allow_private=True,
        workers_enabled=False,
    )
    ctx = Context.create(settings)
    user_id = await accounts.create_user(ctx, email="bench@x.example", password="pw-123456789")
    # The consumer needs the secret before the URL exists: subscribe, then point it there.
    webhook_id, secret = await webhooks.create_webhook(
        ctx, user_id=user_id, url="http://127.0.0.1:9/", event_types=None
    )
    proc, base = start_consumer(secret)
    try:
        async with ctx.engine.begin() as conn:
            await store.set_url(conn, webhook_id, base + "/hook", ctx.clock())

        raw_httpx = await post_all(None, base, secret, n_events)
        pinned = PinnedTransport(UrlGuard(allow_private=True))
        transport_only = await post_all(pinned, base, secret, n_events)

        started = time.perf_counter()
        for offset in range(0, n_events, 500):
            async with ctx.engine.begin() as conn:
                for i in range(offset, min(offset + 500, n_events)):
                    await outbox.enqueue(
                        conn,
                        user_id=user_id,
                        type="thread.quiet",
                        payload={**PAYLOAD, "n": i},
                        now=ctx.clock(),
                    )
        enqueue_per_s = n_events / (time.perf_counter() - started)

        dispatcher = webhooks.make_dispatcher(ctx, owner="bench")
        stop = asyncio.Event()
        started = time.perf_counter()
        loop = asyncio.create_task(dispatcher.run(stop))
        while True:
            await asyncio.sleep(0.05)
            async with reading(ctx.engine) as conn:
                counts = await store.count_by_status(conn, webhook_id)
            if counts.get("succeeded", 0) >= n_events or loop.done():
                break
        elapsed = time.perf_counter() - started
        stop.set()
        dispatcher.wake.set()
        await loop
        await dispatcher.aclose()
        stats = await consumer_stats(base)
    finally:
        proc.terminate()
        proc.wait()
        await ctx.close()
    delivered = counts.get("succeeded", 0)
    return {
        "deliveries_per_s": delivered / elapsed,
        "delivered": delivered,
        "failed": n_events - delivered,
        "verified": stats["events"],  # distinct events verified by the consumer
        "rejected": stats["rejected"],
        "baseline_httpx_per_s": raw_httpx,
        "transport_only_per_s": transport_only,
        "enqueue_per_s": enqueue_per_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        r = asyncio.run(run(url, args.events))
    ours = float(r["deliveries_per_s"])
    httpx_rate = float(r["baseline_httpx_per_s"])
    transport_rate = float(r["transport_only_per_s"])
    backend = "sqlite" if (args.database_url or "sqlite").startswith("sqlite") else "postgresql"
    print(json.dumps(r, indent=2), file=sys.stderr)
    print(f"ours (outbox -> claim -> sign -> POST -> record): {ours:.0f} deliveries/s")
    print(f"bare httpx.AsyncClient, same bodies, {PER_ENDPOINT} in flight: {httpx_rate:.0f}/s")
    print(f"our transport alone, no database: {transport_rate:.0f}/s")
    verdict = "PASS" if ours >= BAR and r["failed"] == 0 and r["rejected"] == 0 else "FAIL"
    print(
        f"bench: webhooks deliveries_per_s={ours:.0f} events={args.events} workers=1 "
        f"db={backend} verified={r['verified']} rejected={r['rejected']} "
        f"baseline_httpx_per_s={httpx_rate:.0f} ratio_vs_httpx={ours / httpx_rate:.2f} "
        f"transport_only_per_s={transport_rate:.0f} "
        f"ratio_vs_transport={ours / transport_rate:.2f} bar={BAR} {verdict}"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
