"""Reply-to-event latency with IDLE: 500 mailboxes watched by ONE worker on PostgreSQL.

Dovecot on loopback with 500 users of a few hundred messages each; one `radiosilence worker`
first-syncs them all and holds an IDLE connection on each. Then a prospect's reply is APPENDed
to a random mailbox every 200 ms for a minute; for each, the time from the APPEND to its
`thread.replied` event being committed, and to its delivery at a local webhook consumer. Then
30 s with nothing arriving: the worker's CPU share and RSS. Then a second worker joins: every
mailbox must end up watched exactly once, the 500 IDLE connections shared out between them.
Bars: p99 < 5 s, idle CPU < 5 % of one core, RSS < 500 MB.
Run: .venv/bin/python bench/watch_bench.py [--mailboxes 500] [--messages 200] [--seconds 60]
The last line: bench: watch mailboxes=… p50_ms=… p99_ms=… idle_cpu_pct=… rss_mb=… workers2_ok=…
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet

from app.services import webhooks
from app.services.context import Context
from tests.support.dovecot_log import sessions


class Consumer:
    """A webhook receiver on loopback that notes when each delivery arrived."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # proposal key -> arrival (epoch seconds)
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.time()
                event = json.loads(body)
                if event.get("type") == "thread.replied":
                    for key in _keys(body.decode()):
                        received.setdefault(key, now)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _keys(text: str) -> list[str]:
    import re

    return re.findall(r"out\d+-\d+@seller\.example", text)


async def subscribe(url: str, user_id: int, consumer_url: str) -> None:
    ctx = Context.create(fleet.settings(url))
    try:
        await webhooks.create_webhook(
            ctx, user_id=user_id, url=consumer_url, event_types=["thread.replied"]
        )
    finally:
        await ctx.close()


def append_reply(server: Any, n: int, i: int) -> float:
    """The prospect answers proposal i of mailbox n; returns when the APPEND was sent."""
    proposal = fleet.proposal_id(n, i)
    raw = (
        f"From: buyer{i}@customer{n}-{i % 7}.example\r\nTo: {fleet.REP}\r\n"
        f"Subject: Re: Proposal {i}\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <late{n}-{i}@customer.example>\r\nIn-Reply-To: {proposal}\r\n"
        f"References: {proposal}\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nYes, let us go ahead.\r\n"
    ).encode()
    conn = imaplib.IMAP4(server.host, server.port, timeout=30)
    try:
        conn.login(fleet.username(n), fleet.PASSWORD)
        sent = time.time()
        typ, _ = conn.append("INBOX", None, None, raw)
        assert typ == "OK"
        return sent
    finally:
        conn.logout()


def open_watches(log: Path) -> dict[str, set[str]]:
    """Worker -> the users it holds an open IDLE (watch) connection to, per Dovecot's log."""
    held: dict[str, set[str]] = {}
    for s in sessions(log):
        if s.purpose == "watch" and s.end == float("inf"):
            held.setdefault(s.worker, set()).add(s.user)
    return held


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=500)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--every", type=float, default=0.2)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    count = args.mailboxes
    folder = Path(tempfile.mkdtemp(prefix="rs-watch-bench-"))
    ok_so_far = False
    t = time.monotonic()
    server, unanswered = fleet.dovecot_with_users(count, args.messages)
    print(f"dovecot: {count} users x {args.messages} messages in {time.monotonic() - t:.0f} s")
    url = fleet.fresh_database()
    try:
        user_id = asyncio.run(fleet.make_mailboxes(url, server, count))
        consumer = Consumer()
        asyncio.run(subscribe(url, user_id, consumer.url))
        extra = {"imap_idle_mailboxes": str(count), "log_level": "INFO"}
        with fleet.workers(url, 1, folder, **extra) as (one,):
            started = time.monotonic()
            fleet.wait_until(
                lambda: fleet.query(url, "SELECT count(*) AS n FROM mailboxes "
                                    "WHERE last_sync_at IS NOT NULL")[0]["n"] == count,
                1800, "the first syncs",
            )  # fmt: skip
            synced = time.monotonic() - started
            print(f"first sync of {count} mailboxes by one worker: {synced:.0f} s "
                  f"({count / synced:.1f} mailboxes/s)")  # fmt: skip
            fleet.wait_until(
                lambda: len(open_watches(server.log_path).get(one.owner, ())) == count,
                300, "an IDLE connection on every mailbox",
            )  # fmt: skip
            watched = time.monotonic() - started
            print(f"all {count} watched {watched:.0f} s after the worker started")
            time.sleep(5)  # each watcher has sent IDLE

            rng = random.Random(7)
            targets = [(n, i) for n, props in unanswered.items() for i in props]
            rng.shuffle(targets)
            sent: dict[str, float] = {}
            replies = int(args.seconds / args.every)
            begin = time.monotonic()
            for k in range(replies):
                n, i = targets[k]
                sent[f"out{n}-{i}@seller.example"] = append_reply(server, n, i)
                time.sleep(max(0.0, begin + (k + 1) * args.every - time.monotonic()))
            fleet.wait_until(lambda: len(consumer.received) >= replies, 120,
                             "every thread.replied delivered", step=0.2)  # fmt: skip
            delivered = [(consumer.received[key] - t0) * 1000 for key, t0 in sent.items()]
            committed_at: dict[str, float] = {}
            for row in fleet.query(
                url, "SELECT created_at, payload::text AS p FROM events "
                "WHERE type = 'thread.replied'",
            ):  # fmt: skip
                for key in _keys(row["p"]):
                    committed_at.setdefault(key, row["created_at"].timestamp())
            committed = [(committed_at[key] - t0) * 1000 for key, t0 in sent.items()]
            stray = set(consumer.received) - set(sent)
            print(f"replies: {replies}; events for other threads: {len(stray)}")
            print(f"committed ms: p50={percentile(committed, 0.5):.0f} "
                  f"p99={percentile(committed, 0.99):.0f} max={max(committed):.0f}")  # fmt: skip
            print(f"delivered ms: p50={percentile(delivered, 0.5):.0f} "
                  f"p99={percentile(delivered, 0.99):.0f} max={max(delivered):.0f} "
                  f"mean={statistics.mean(delivered):.0f}")  # fmt: skip

            pid = one.proc.pid
            cpu_before, wall = fleet.cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle_seconds)
            idle_cpu = (fleet.cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall) * 100
            rss, peak = fleet.rss_mb(pid), fleet.rss_mb(pid, "VmHWM")
            threads = len(list(Path(f"/proc/{pid}/task").iterdir()))
            fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
            print(
                f"idle {args.idle_seconds:.0f} s: cpu={idle_cpu:.1f}% of one core, "
                f"rss={rss:.0f} MB (peak {peak:.0f} MB), threads={threads}, fds={fds}"
            )

            two = fleet.start_worker(url, folder / "worker-second.log", **extra)
            try:
                state: dict[str, Any] = {}

                def shared() -> bool:
                    held = open_watches(server.log_path)
                    users = [u for w in (one.owner, two.owner) for u in held.get(w, ())]
                    rows = fleet.query(url, "SELECT watch_owner, count(*) AS n FROM mailboxes "
                                       "GROUP BY watch_owner")  # fmt: skip
                    by_owner = {r["watch_owner"]: r["n"] for r in rows}
                    state.update(
                        log={w: len(u) for w, u in held.items()}, distinct=len(set(users)),
                        database=by_owner,
                    )  # fmt: skip
                    return (
                        len(users) == count
                        and len(set(users)) == count
                        and set(held) <= {one.owner, two.owner}
                        and sum(len(v) for v in held.values()) == count
                        and by_owner.get(one.owner) == count // 2
                        and by_owner.get(two.owner) == count - count // 2
                    )

                try:
                    took = fleet.wait_until(shared, 180, "the watches shared by two workers")
                    workers2_ok = True
                    print(f"2 workers: {count // 2} + {count - count // 2} watches, every "
                          f"mailbox once, {took:.0f} s after the second started")  # fmt: skip
                except SystemExit as exc:
                    print(exc, state)
                    workers2_ok = False
                stops = [w.stop() for w in (one, two)]
                print(f"SIGTERM: stopped in {max(stops):.1f} s")
            finally:
                if two.proc.poll() is None:
                    two.proc.kill()
            left = fleet.query(
                url,
                "SELECT count(*) AS n FROM mailboxes "
                "WHERE lease_owner IS NOT NULL OR watch_owner IS NOT NULL",
            )[0]["n"]
            print(f"leases left after stop: {left}")
            ok_so_far = workers2_ok and left == 0
    finally:
        server.close()
        fleet.drop_database(url)
        if ok_so_far:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"worker logs kept in {folder}")
    p50, p99 = percentile(delivered, 0.5), percentile(delivered, 0.99)
    ok = p99 < 5000 and idle_cpu < 5 and rss < 500 and workers2_ok
    print(f"bars: p99 < 5000 ms, idle cpu < 5 %, rss < 500 MB, 2 workers share: "
          f"{'met' if ok else 'NOT met'}")  # fmt: skip
    print(
        f"bench: watch mailboxes={count} p50_ms={p50:.0f} p99_ms={p99:.0f} "
        f"idle_cpu_pct={idle_cpu:.1f} rss_mb={rss:.0f} workers2_ok={workers2_ok}"
    )


if __name__ == "__main__":
    main()
