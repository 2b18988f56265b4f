"""Find and evaluate the 1,000 due threads among 100,000 and among 1,000,000 stored threads.

Bars (issue 5): < 50 ms at 1,000,000 threads, and the ratio 1M/100k below 1.5 (the cost
follows what is due, not what is stored). Each run is the real path of the scheduler
(`evaluate_due`), timed step by step in one transaction that is rolled back, so that every
run sees the same database:

- find: the two indexed lookups (`threads_to_evaluate`), and which of those threads wait for
  a body still to read (`threads_awaiting_body`);
- evaluate: the mailbox and the messages of the due threads in one query, and `decide` for
  each (`decide_threads`);
- write: one executemany for the decisions and one INSERT for their events
  (`write_decisions`).

`due_ms` is find + evaluate (the issue's "find and evaluate"); `total_ms` adds the write,
i.e. the whole scheduler pass up to its commit. Each figure is the median over the runs (of
per-run sums). Last, one pass through `evaluate_due` is committed, and the commit is timed
once: it includes SQLite's automatic WAL checkpoint, which a batch this size triggers.
Run: .venv/bin/python bench/rules_bench.py [--runs N]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.crypto import SecretBox
from app.services.evaluation import decide_threads, evaluate_due, write_decisions
from app.storage.engine import make_engine
from app.storage.messages import threads_awaiting_body
from app.storage.migrate import upgrade
from app.storage.threads import threads_to_evaluate

NOW = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)  # a Monday afternoon in Berlin
DUE = 1_000
CHUNK = 50_000


def ts(dt: datetime) -> str:
    """The text form SQLAlchemy stores aware-UTC datetimes in on SQLite."""
    return dt.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def populate(path: Path, n_threads: int) -> None:
    """Threads straight into SQLite: DUE of them due now (with their messages: the rep's
    e-mail a week ago), the rest waiting for a later check or settled (no check at all)."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    now = ts(NOW)
    db.execute(
        "INSERT INTO users (id, email, password_hash, is_admin, created_at) "
        "VALUES (1, 'rep@seller.example', 'x', 0, ?)",
        (now,),
    )
    db.execute(
        "INSERT INTO mailboxes (id, user_id, name, imap_host, imap_port, imap_security, "
        "imap_username, auth_method, secret_enc, addresses, timezone, holiday_country, rules, "
        "status, status_message, created_at, updated_at) VALUES (1, 1, 'Work', '127.0.0.1', "
        "143, 'plain', 'u', 'password', ?, '[\"rep@seller.example\"]', 'Europe/Berlin', 'DE', "
        "'{}', 'ok', '', ?, ?)",
        (SecretBox("b" * 40).encrypt("pw"), now, now),
    )
    rng = random.Random(5)
    due_ids = set(rng.sample(range(1, n_threads + 1), DUE))
    sent = ts(NOW - timedelta(days=7))
    past = ts(NOW - timedelta(minutes=5))

    def thread_rows(first: int, last: int) -> list[tuple[object, ...]]:
        rows = []
        for tid in range(first, last):
            if tid in due_ids:
                state, check = "awaiting_reply", past
            elif tid % 3:
                state, check = "awaiting_reply", ts(NOW + timedelta(minutes=rng.randint(1, 9999)))
            else:
                state, check = "replied", None
            rows.append((tid, f"Subject {tid}", state, f"{state}: bench", check, sent, now, now))
        return rows

    for first in range(1, n_threads + 1, CHUNK):
        db.executemany(
            "INSERT INTO threads (id, mailbox_id, user_id, subject, state, reason, "
            "needs_response, next_check_at, last_outbound_at, followups_sent, dirty, "
            "created_at, updated_at) VALUES (?, 1, 1, ?, ?, ?, 0, ?, ?, 0, 0, ?, ?)",
            thread_rows(first, min(first + CHUNK, n_threads + 1)),
        )
    messages = []
    for tid in sorted(due_ids):
        for k, (kind, sender) in enumerate(
            [("outbound", "rep@seller.example"), ("internal", "boss@seller.example")]
        ):
            messages.append(
                (
                    tid,
                    f"<m{tid}.{k}@x>",
                    f"Subject {tid}",
                    sender,
                    '["anna@buyer.example"]',
                    ts(NOW - timedelta(days=7, minutes=-k)),
                    kind,
                    now,
                )
            )
    db.executemany(
        "INSERT INTO messages (mailbox_id, thread_id, message_key, has_message_id, in_reply_to, "
        '"references", subject, from_addr, from_name, to_addrs, cc_addrs, date, kind, '
        "kind_reason, signals, defects, created_at) "
        "VALUES (1, ?, ?, 1, '[]', '[]', ?, ?, '', ?, '[]', ?, ?, '', '{}', '[]', ?)",
        messages,
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


STEPS = ("find", "evaluate", "write", "due", "total")


async def measure(path: Path, runs: int) -> dict[str, float]:
    """Median milliseconds of each step, of find + evaluate (due) and of all three (total)."""
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    times: dict[str, list[float]] = {step: [] for step in STEPS}
    try:
        for i in range(runs + 1):  # the first run warms caches and is not counted
            async with engine.connect() as conn:
                transaction = await conn.begin()
                t0 = time.perf_counter()
                rows = await threads_to_evaluate(conn, now=NOW, limit=DUE)
                # and which of them wait for a body still to read (none here; the query runs)
                assert not await threads_awaiting_body(conn, [r.id for r in rows])
                t1 = time.perf_counter()
                batch = await decide_threads(conn, rows, NOW)
                t2 = time.perf_counter()
                changed = await write_decisions(conn, batch, NOW)
                t3 = time.perf_counter()
                await transaction.rollback()
            assert len(rows) == DUE and len(batch) == DUE, (len(rows), len(batch))
            assert changed == DUE, changed  # each due thread turned quiet
            # The scheduler drops a batch once it is written; here too, before the next run
            # (else freeing this one would land inside the next run's timings).
            del rows, batch
            if i:
                spans = [(t0, t1), (t1, t2), (t2, t3), (t0, t2), (t0, t3)]
                for step, (a, b) in zip(STEPS, spans, strict=True):
                    times[step].append((b - a) * 1000)
        # Last, once, through the scheduler's own entry point and committed: what the commit
        # adds (the batch's pages cross SQLite's automatic WAL checkpoint).
        async with engine.connect() as conn:
            transaction = await conn.begin()
            assert await evaluate_due(conn, NOW, limit=DUE) == DUE
            t0 = time.perf_counter()
            await transaction.commit()
            commit_ms = (time.perf_counter() - t0) * 1000
    finally:
        await engine.dispose()
    return {"commit": commit_ms} | {step: statistics.median(v) for step, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    results: dict[int, dict[str, float]] = {}
    for n in (100_000, 1_000_000):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bench.db"
            upgrade(f"sqlite+aiosqlite:///{path}")
            t0 = time.perf_counter()
            populate(path, n)
            print(f"populated {n:,} threads in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            results[n] = asyncio.run(measure(path, args.runs))
        r = results[n]
        print(
            f"{n:>9,} threads: find {r['find']:.1f} ms, evaluate (load + decide) "
            f"{r['evaluate']:.1f} ms, write (decisions + events) {r['write']:.1f} ms; "
            f"find + evaluate {r['due']:.1f} ms, total {r['total']:.1f} ms; "
            f"committing one pass: {r['commit']:.0f} ms more"
        )
    big, small = results[1_000_000], results[100_000]
    due_1m, ratio = big["due"], big["due"] / small["due"]
    verdict = "PASS" if due_1m < 50 and ratio < 1.5 else "FAIL"
    print(f"bars: due_ms_1m < 50 and ratio_1m_100k < 1.5: {verdict}")
    print(
        f"bench: rules due_ms_1m={due_1m:.1f} ratio_1m_100k={ratio:.2f} "
        f"total_ms_1m={big['total']:.1f}"
    )


if __name__ == "__main__":
    main()
