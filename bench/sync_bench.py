"""First sync of a large mailbox (100,000 messages unless --messages says otherwise; the README
also has 1,000,000) from a local Dovecot, against a bare imaplib FETCH.

In one run: (a) a bare `imaplib` UID FETCH of the same header fields, (b) our first sync into
SQLite (fetch, parse, classify, thread, store — in a fresh process, so its peak RSS is its own),
then (c) the IMAP round trips of an idle re-poll. Bars: ratio b/a >= 0.5, peak RSS < 200 MB,
idle re-poll <= 2 round trips per folder.
Run: .venv/bin/python bench/sync_bench.py [--messages N]   (also `make bench`)
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import multiprocessing
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.domain.headers import FETCH_HEADER_FIELDS  # noqa: E402
from app.storage.engine import sqlite_pragmas  # noqa: E402
from tests.support.dovecot import DovecotServer, start_dovecot  # noqa: E402

REP = "rep@seller.example"
USER, PASSWORD = "bench@seller.example", "bench-password"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"


def _message(headers: list[tuple[str, str]], body: str) -> bytes:
    return (
        "".join(f"{k}: {v}\r\n" for k, v in headers) + "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def write_mailbox(server: DovecotServer, total: int) -> dict[str, int]:
    """Maildir files written directly (APPEND would take minutes): 40% the rep's sent mail,
    30% replies to it, 30% newsletters and notifications, spread over the last 80 days."""
    maildir = server.maildir_path(USER)
    folders = {"INBOX": maildir, "Sent": maildir / ".Sent"}
    for path in folders.values():
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(42)
    now = datetime.now(UTC)
    counts = {"INBOX": 0, "Sent": 0}
    sent = 0
    for i in range(total):
        date = now - timedelta(days=rng.uniform(0, 80))
        when = format_datetime(date)
        roll = i % 10
        if roll < 4:
            folder, sent = "Sent", i
            raw = _message(
                [
                    ("From", f"Rep Person <{REP}>"),
                    ("To", f'"Buyer, Number {i}" <buyer{i}@customer{i % 997}.example>'),
                    ("Subject", f"Proposal {i} for your team"),
                    ("Date", when),
                    ("Message-ID", f"<out{i}@seller.example>"),
                ],
                "Hi,\r\n\r\nhere is the proposal we discussed.\r\n\r\nBest,\r\nRep\r\n",
            )
        elif roll < 7:
            folder = "INBOX"
            raw = _message(
                [
                    ("From", f"Buyer {sent} <buyer{sent}@customer{sent % 997}.example>"),
                    ("To", REP),
                    ("Subject", f"Re: Proposal {sent} for your team"),
                    ("Date", when),
                    ("Message-ID", f"<in{i}@customer.example>"),
                    ("In-Reply-To", f"<out{sent}@seller.example>"),
                    ("References", f"<out{sent}@seller.example>"),
                ],
                "Thanks, let us talk next week.\r\n",
            )
        else:
            folder = "INBOX"
            raw = _message(
                [
                    ("From", "Newsletter <news@vendor.example>"),
                    ("To", REP),
                    ("Subject", f"Weekly digest {i}"),
                    ("Date", when),
                    ("Message-ID", f"<news{i}@vendor.example>"),
                    ("List-Id", "<weekly.vendor.example>"),
                    ("List-Unsubscribe", "<mailto:unsub@vendor.example>"),
                ],
                "News.\r\n",
            )
        name = f"{int(date.timestamp())}.M{i}P1.bench,S={len(raw)}:2,"
        (folders[folder] / "cur" / name).write_bytes(raw)
        counts[folder] += 1
    server.chown_maildir(USER)
    return counts


def bare_imaplib_fetch(server: DovecotServer, folders: list[str]) -> tuple[int, float]:
    """The wire's speed: UID FETCH of our header fields in 1,000-UID batches, no parsing.
    Batches are UID ranges up to UIDNEXT: a bare `UID SEARCH ALL` would be one line of every
    UID, which imaplib refuses beyond about 140,000 of them."""
    items = "(UID INTERNALDATE BODY.PEEK[HEADER.FIELDS (" + " ".join(FETCH_HEADER_FIELDS) + ")])"
    count = 0
    conn = imaplib.IMAP4(server.host, server.port)
    conn.login(USER, PASSWORD)
    t0 = time.perf_counter()
    for folder in folders:
        conn.select(folder, readonly=True)
        _, data = conn.response("UIDNEXT")
        uidnext = int(data[0])
        for start in range(1, uidnext, 1000):
            uid_range = f"{start}:{min(start + 999, uidnext - 1)}"
            _, fetched = conn.uid("FETCH", uid_range, items)
            count += sum(1 for part in fetched if isinstance(part, tuple))
    elapsed = time.perf_counter() - t0
    conn.logout()
    return count, elapsed


def ours(server_info: dict[str, Any], db_dir: str, queue: Any) -> None:
    """Runs in a fresh process: the first sync, then an idle re-poll with its round trips."""
    from app.config import Settings
    from app.domain.model import Identity
    from app.mail import sync as mail_sync
    from app.mail.imap import ImapAccount, ImapSession
    from app.runtime import settle_heap
    from app.services import accounts, mailboxes
    from app.services import sync as sync_service
    from app.services.context import Context
    from app.storage.migrate import upgrade

    url = f"sqlite+aiosqlite:///{db_dir}/bench.db"
    upgrade(url)
    settings = Settings(
        _env_file=None,
        database_url=url,
        secret_key=SECRET,  # type: ignore[call-arg]
        workers_enabled=False,
        imap_allow_private=True,  # the bench's Dovecot listens on loopback
    )

    async def run() -> dict[str, Any]:
        ctx = Context.create(settings)
        settle_heap()  # as the worker and the CLI do at start-up
        try:
            user_id = await accounts.create_user(ctx, email=REP, password="long-password")
            data = mailboxes.MailboxInput(
                name="Bench",
                host=server_info["host"],
                port=server_info["port"],
                security="plain",
                username=USER,
                secret=PASSWORD,
                auth_method="password",
                addresses=[REP],
                timezone="UTC",
                holiday_country=None,
            )
            mailbox_id = await mailboxes.create_mailbox(ctx, user_id=user_id, data=data)
            row = await mailboxes.get_mailbox(ctx, user_id=user_id, mailbox_id=mailbox_id)
            ref = mail_sync.MailboxRef(
                id=mailbox_id, user_id=user_id, identity=Identity.from_addresses([REP])
            )
            options = mail_sync.SyncOptions(
                since=None, batch_size=settings.sync_batch_size, now=datetime.now(UTC)
            )
            account = ImapAccount(
                host=server_info["host"],
                port=server_info["port"],
                security="plain",
                username=USER,
                secret=PASSWORD,
            )
            session = await asyncio.to_thread(ImapSession.open, account)
            try:
                t0 = time.perf_counter()
                report = await mail_sync.sync_mailbox(ctx.engine, session, ref, options)
                sync_s = time.perf_counter() - t0
                before = session.round_trips
                idle = await mail_sync.sync_mailbox(ctx.engine, session, ref, options)
                idle_trips = session.round_trips - before
            finally:
                await asyncio.to_thread(session.close)
            t0 = time.perf_counter()
            outcome = await sync_service.sync_mailbox(ctx, int(row["id"]))
            rules_s = time.perf_counter() - t0
            return {
                "messages": report.new_messages,
                "sync_s": sync_s,
                "folders": idle.folders,
                "idle_trips": idle_trips,
                "rules_s": rules_s,
                "threads": outcome.threads_evaluated,
                "phases": dict(report.seconds),
                "batch_size": options.batch_size,
            }
        finally:
            await ctx.close()

    try:
        result = asyncio.run(run())
    except BaseException as exc:
        queue.put({"error": f"{type(exc).__name__}: {exc}"})
        raise
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


# The tables a first sync writes, parents first.
FLOOR_TABLES = ("threads", "messages", "message_locations", "thread_keys")


def sqlite_floor(db_path: Path, batches: int) -> float:
    """Seconds that SQLite alone takes to write what our sync wrote: the same rows, in the same
    order, into an empty copy of the schema, through bare sqlite3 with the product's pragmas,
    in as many committed batches. No Python work per row beyond the driver's: a floor."""
    source = sqlite3.connect(db_path)
    schema = [
        sql
        for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
            " ORDER BY type = 'index'"  # tables before their indexes
        )
    ]
    rows = {t: source.execute(f"SELECT * FROM {t} ORDER BY rowid").fetchall() for t in FLOOR_TABLES}
    source.close()
    target = sqlite3.connect(db_path.with_name("floor.db"))
    sqlite_pragmas(target)
    # The batches cut each table at the same proportion, so a slice of messages may name a
    # thread of the next slice: no foreign-key checks (their index lookups are cheap anyway).
    target.execute("PRAGMA foreign_keys=OFF")
    for sql in schema:
        target.execute(sql)
    inserts = {
        t: f"INSERT INTO {t} VALUES ({', '.join('?' * len(rows[t][0]))})"
        for t in FLOOR_TABLES
        if rows[t]
    }
    t0 = time.perf_counter()
    for i in range(batches):
        target.execute("BEGIN IMMEDIATE")
        for table, sql in inserts.items():
            size = -(-len(rows[table]) // batches)
            target.executemany(sql, rows[table][i * size : (i + 1) * size])
        target.execute("COMMIT")
    elapsed = time.perf_counter() - t0
    target.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o755)
        server = start_dovecot(Path(tmp) / "dovecot")
        try:
            server.add_user(USER, PASSWORD)
            t0 = time.perf_counter()
            counts = write_mailbox(server, args.messages)
            print(f"wrote {counts} in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            bare_imaplib_fetch(server, list(counts))  # warm-up: Dovecot builds its indexes
            base_n, base_s = bare_imaplib_fetch(server, list(counts))
            db_dir = Path(tmp) / "db"
            db_dir.mkdir()
            spawn = multiprocessing.get_context("spawn")
            queue = spawn.Queue()
            child = spawn.Process(
                target=ours, args=({"host": server.host, "port": server.port}, str(db_dir), queue)
            )
            child.start()
            result = queue.get(timeout=3600)
            child.join(timeout=60)
            if "error" in result:
                raise SystemExit(f"our sync failed: {result['error']}")
            batches = -(-result["messages"] // result["batch_size"])
            floor_s = sqlite_floor(db_dir / "bench.db", batches)
        finally:
            server.close()
    base_rate = base_n / base_s
    our_rate = result["messages"] / result["sync_s"]
    trips = result["idle_trips"] / max(1, result["folders"])
    print(f"baseline bare imaplib FETCH: {base_n} messages in {base_s:.2f}s = {base_rate:,.0f}/s")
    print(
        f"ours, first sync into SQLite: {result['messages']} messages in {result['sync_s']:.2f}s"
        f" = {our_rate:,.0f}/s; then rules over {result['threads']} threads in "
        f"{result['rules_s']:.2f}s"
    )
    per_message = {p: s * 1e6 / result["messages"] for p, s in result["phases"].items()}
    print(
        "where the sync's time went, us per message (reading overlaps storing): "
        + " ".join(f"{p}={us:.0f}" for p, us in per_message.items())
    )
    floor_us = floor_s * 1e6 / result["messages"]
    print(
        f"floor: SQLite alone writes the same rows in {floor_us:.0f} us per message; the bar "
        f"(ratio 0.5) allows {2e6 / base_rate:.0f} us per message for everything"
    )
    print(
        f"peak RSS of the syncing process: {result['peak_rss_mb']:.0f} MB; idle re-poll: "
        f"{result['idle_trips']} round trips for {result['folders']} folders"
    )
    print(
        f"bench: sync ratio={our_rate / base_rate:.2f} ours_msgs_per_s={our_rate:.0f} "
        f"baseline_msgs_per_s={base_rate:.0f} peak_rss_mb={result['peak_rss_mb']:.0f} "
        f"idle_roundtrips_per_folder={trips:.1f}"
    )


if __name__ == "__main__":
    main()
