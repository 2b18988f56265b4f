"""GET /api/v1/threads?state=quiet over 100,000 threads on SQLite: p99 latency.

Bar (PRODUCT.md): p99 < 50 ms. The baseline is the same page read with the bare sqlite3
module in the same run, so the ratio says what the service layers cost on this machine.
Run: .venv/bin/python bench/threads_list_bench.py [--threads N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings
from app.crypto import SecretBox, hash_api_token
from app.main import create_app
from app.storage.migrate import upgrade

STATES = ["awaiting_reply"] * 4 + ["quiet"] * 2 + ["replied"] * 3 + ["ignored"]
TOKEN = "rs_bench-token-0123456789"


def populate(path: Path, n_threads: int) -> None:
    """Write users, a mailbox, threads and two messages per thread straight into SQLite."""
    db = sqlite3.connect(path)
    now = datetime(2026, 11, 23, tzinfo=UTC)
    ts = now.replace(tzinfo=None).isoformat(sep=" ")
    db.execute(
        "INSERT INTO users (id, email, password_hash, is_admin, created_at) "
        "VALUES (1, 'rep@seller.example', 'x', 0, ?)",
        (ts,),
    )
    db.execute(
        "INSERT INTO api_tokens (user_id, name, token_hash, prefix, created_at) "
        "VALUES (1, 'bench', ?, 'rs_bench', ?)",
        (hash_api_token(TOKEN), ts),
    )
    secret = SecretBox("b" * 40).encrypt("pw")
    db.execute(
        "INSERT INTO mailboxes (id, user_id, name, imap_host, imap_port, imap_security, "
        "imap_username, auth_method, secret_enc, addresses, timezone, rules, status, "
        "status_message, created_at, updated_at) VALUES (1, 1, 'Work', '127.0.0.1', 143, "
        "'plain', 'u', 'password', ?, '[\"rep@seller.example\"]', 'UTC', '{}', 'ok', '', ?, ?)",
        (secret, ts, ts),
    )
    rng = random.Random(7)
    threads, messages = [], []
    for tid in range(1, n_threads + 1):
        sent = (now - timedelta(minutes=tid)).replace(tzinfo=None).isoformat(sep=" ")
        state = rng.choice(STATES)
        threads.append((tid, 1, 1, f"Subject {tid}", state, f"{state}: bench", 0, sent, ts, ts))
        for k in range(2):
            messages.append(
                (
                    1,
                    tid,
                    f"<m{tid}.{k}@x>",
                    1,
                    "[]",
                    "[]",
                    f"Subject {tid}",
                    "rep@seller.example",
                    "",
                    "[]",
                    "[]",
                    sent,
                    "outbound",
                    "",
                    "{}",
                    "[]",
                    ts,
                )
            )
    db.executemany(
        "INSERT INTO threads (id, mailbox_id, user_id, subject, state, reason, needs_response, "
        "last_outbound_at, created_at, updated_at, followups_sent, dirty) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
        threads,
    )
    db.executemany(
        "INSERT INTO messages (mailbox_id, thread_id, message_key, has_message_id, in_reply_to, "
        '"references", subject, from_addr, from_name, to_addrs, cc_addrs, date, kind, '
        "kind_reason, signals, defects, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        messages,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98]


def baseline(path: Path, requests: int) -> list[float]:
    db = sqlite3.connect(path)
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        rows = db.execute(
            "SELECT * FROM threads WHERE user_id = 1 AND state = 'quiet' AND state IS NOT NULL "
            "ORDER BY id DESC LIMIT 51"
        ).fetchall()
        ids = [r[0] for r in rows[:50]]
        marks = ",".join("?" * len(ids))
        db.execute(
            f"SELECT thread_id, message_key FROM messages WHERE thread_id IN ({marks}) "
            "AND has_message_id ORDER BY thread_id, date, id",
            ids,
        ).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    db.close()
    return times


async def ours(path: Path, requests: int) -> list[float]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{path}",
        secret_key="b" * 40,
        workers_enabled=False,
    )
    app = create_app(settings)
    times = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as client:
            cursor = None
            for i in range(requests + 20):
                params = {"state": "quiet", "limit": 50, **({"cursor": cursor} if cursor else {})}
                t0 = time.perf_counter()
                response = await client.get("/api/v1/threads", params=params)
                elapsed = (time.perf_counter() - t0) * 1000
                assert response.status_code == 200, response.text
                body = response.json()
                assert len(body["items"]) == 50
                cursor = body["next_cursor"] if i % 10 else None  # first pages and deep pages
                if i >= 20:  # warm-up excluded
                    times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        t0 = time.perf_counter()
        populate(path, args.threads)
        print(
            f"populated {args.threads} threads in {time.perf_counter() - t0:.1f}s", file=sys.stderr
        )
        base = baseline(path, args.requests)
        mine = asyncio.run(ours(path, args.requests))
    ours_p99, base_p99 = p99(mine), p99(base)
    print(f"ours: p50={statistics.median(mine):.2f} ms p99={ours_p99:.2f} ms")
    print(f"bare sqlite3: p50={statistics.median(base):.2f} ms p99={base_p99:.2f} ms")
    verdict = "PASS" if ours_p99 < 50 else "FAIL"
    print(
        f"bench: threads_list threads={args.threads} p99_ms={ours_p99:.2f} "
        f"baseline_p99_ms={base_p99:.2f} ratio={ours_p99 / base_p99:.1f} bar_p99_ms=50 {verdict}"
    )


if __name__ == "__main__":
    main()
