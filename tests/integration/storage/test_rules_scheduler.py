"""The scheduler's storage on both backends: what is due, found by index; batched writes;
the wake-up time; and `radiosilence backtest` as a user runs it."""

from __future__ import annotations

import asyncio
import mailbox
import time
from dataclasses import asdict, fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from app import workers as workers_module
from app.services import accounts, imports, thread_actions
from app.services import events as event_service
from app.services import threads as thread_service
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import outbox
from app.storage import threads as store
from app.storage import users as user_store
from app.storage.outbox import NewEvent
from app.storage.stored_messages import thread_message
from app.storage.tables import events, messages, threads
from app.workers import Workers
from tests.conftest import TEST_SECRET_KEY
from tests.factories import PROSPECT, REP, make_message
from tests.support.processes import cli_env, run_cli

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


async def make_threads(conn: AsyncConnection, ctx: Context) -> tuple[int, dict[str, int]]:
    user_id = await user_store.create_user(
        conn, email="u@seller.example", password_hash="x", is_admin=False, now=ctx.clock()
    )
    mailbox_id = await mailbox_store.create_mailbox(
        conn,
        {
            "user_id": user_id,
            "name": "Work",
            "imap_host": "127.0.0.1",
            "imap_port": 143,
            "imap_security": "plain",
            "imap_username": "u",
            "auth_method": "password",
            "secret_enc": ctx.box.encrypt("pw"),
            "addresses": [REP],
            "timezone": "UTC",
            "holiday_country": None,
            "holiday_subdiv": None,
            "rules": {},
        },
        now=datetime.now(UTC),
    )
    kinds = {
        "dirty": (True, None),
        "due": (False, NOW - timedelta(minutes=5)),
        "later": (False, NOW + timedelta(hours=1)),
        "settled": (False, None),
        "dirty_and_due": (True, NOW - timedelta(hours=2)),
    }
    ids = {}
    for name, (dirty, check) in kinds.items():
        result = await conn.execute(
            insert(threads)
            .values(
                mailbox_id=mailbox_id,
                user_id=user_id,
                subject=name,
                state=None if dirty else "awaiting_reply",
                reason="",
                dirty=dirty,
                next_check_at=check,
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(threads.c.id)
        )
        ids[name] = int(result.scalar_one())
    return mailbox_id, ids


async def test_due_threads_come_from_two_indexed_lookups(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        mailbox_id, ids = await make_threads(conn, ctx)
        rows = await store.threads_to_evaluate(conn, now=NOW)
        assert [r.id for r in rows] == [ids["dirty"], ids["dirty_and_due"], ids["due"]]
        limited = await store.threads_to_evaluate(conn, now=NOW, limit=2)
        assert [r.id for r in limited] == [ids["dirty"], ids["dirty_and_due"]]
        mine = await store.threads_to_evaluate(conn, now=NOW, mailbox_id=mailbox_id)
        assert len(mine) == 3
        assert await store.threads_to_evaluate(conn, now=NOW, mailbox_id=mailbox_id + 1) == []
        # Anything dirty: wake now; else at the earliest check.
        assert await store.earliest_check(conn, now=NOW) == NOW

        read = {r.id: r for r in rows}

        def decided(thread_id: int, **changes: object) -> store.DecidedThread:
            thread = read[thread_id]
            values = {f.name: getattr(thread, f.name) for f in fields(store.Decided)}
            return store.DecidedThread(thread, store.Decided(**(values | changes)))

        await store.save_decisions(
            conn,
            [
                decided(ids["dirty"], state="ignored", reason="ignored: test"),
                decided(ids["dirty_and_due"], state="quiet", next_check_at=None),
                decided(ids["due"], next_check_at=NOW + timedelta(days=1)),
            ],
            now=NOW,
        )
        assert await store.threads_to_evaluate(conn, now=NOW) == []
        assert await store.earliest_check(conn, now=NOW) == NOW + timedelta(hours=1)
        saved = {
            r.id: (r.state, r.dirty)
            for r in await conn.execute(select(threads.c.id, threads.c.state, threads.c.dirty))
        }
        assert saved[ids["dirty"]] == ("ignored", False)
        assert saved[ids["dirty_and_due"]] == ("quiet", False)

        assert await store.mark_mailbox_dirty(conn, mailbox_id) == 5
        assert len(await store.threads_to_evaluate(conn, now=NOW)) == 5


async def test_the_scheduler_reads_decode_like_the_column_types(ctx: Context) -> None:
    """threads_to_evaluate and messages_for_rules skip SQLAlchemy's result processing and
    decode the values themselves: they must give exactly what the typed columns give, on
    both backends (text from SQLite, native values from asyncpg)."""
    async with ctx.engine.begin() as conn:
        mailbox_id, ids = await make_threads(conn, ctx)
        when = datetime(2026, 11, 20, 16, 45, 7, 123456, tzinfo=UTC)
        await conn.execute(
            threads.update()
            .where(threads.c.id == ids["due"])
            .values(
                needs_response=True,
                last_outbound_at=when,
                last_inbound_at=when + timedelta(days=1),
                snoozed_until=when - timedelta(days=3),
                closed_reason="they said no",
                answered_at=when + timedelta(seconds=1),
                answered_note="they called – “yes”",
                reopened_at=when + timedelta(hours=5),
                followups_sent=2,
            )
        )
        base = {
            "mailbox_id": mailbox_id,
            "thread_id": ids["due"],
            "in_reply_to": [],
            "references": [],
            "from_name": "",
            "kind_reason": "",
            "signals": {},
            "defects": [],
            "created_at": NOW,
        }
        await conn.execute(
            insert(messages),
            [
                {
                    **base,
                    "message_key": "<a@x>",
                    "has_message_id": True,
                    "subject": "Offer",
                    "from_addr": REP,
                    "to_addrs": [PROSPECT, "b@buyer.example"],
                    "cc_addrs": [],
                    "date": when,
                    "kind": "outbound",
                    "details": None,
                },
                {
                    **base,
                    "message_key": "sha256:abc",
                    "has_message_id": False,
                    "subject": "Re: Offer",
                    "from_addr": PROSPECT,
                    "from_name": "Anna Käse",
                    "to_addrs": [REP],
                    "cc_addrs": ["c@buyer.example"],
                    "date": when + timedelta(days=1),
                    "kind": "auto_reply",
                    "details": {"subkind": "out_of_office", "return_date": "2026-12-01"},
                },
            ],
        )
        found = await store.threads_to_evaluate(conn, now=NOW)
        typed = {
            dict(r)["id"]: dict(r)
            for r in (
                await conn.execute(
                    select(*store._RULE_THREAD_COLUMNS).where(
                        threads.c.id.in_([r.id for r in found])
                    )
                )
            ).mappings()
        }
        assert sorted(typed) == sorted(r.id for r in found)
        for row in found:
            assert asdict(row) == typed[row.id]
        assert typed[ids["due"]]["answered_note"] == "they called – “yes”"
        loaded = await store.messages_for_rules(conn, [ids["due"]])
        m = messages.c
        expected = [
            dict(r)
            for r in (
                await conn.execute(
                    select(*store._RULE_MESSAGE_COLUMNS)
                    .where(m.thread_id == ids["due"])
                    .order_by(m.date, m.id)
                )
            ).mappings()
        ]
        assert [asdict(m) for m in loaded[ids["due"]]] == expected
        values = [v for r in [*found, *loaded[ids["due"]]] for v in asdict(r).values()]
        for value in values:
            if isinstance(value, datetime):
                assert value.tzinfo is UTC or value.utcoffset() == timedelta(0), value
        assert expected[1]["details"] == {"subkind": "out_of_office", "return_date": "2026-12-01"}
        assert expected[0]["has_message_id"] is True and loaded[ids["due"]][0].has_message_id
        # The decisions' read of the same rows: the rules' values, the shown Message-IDs, the
        # oldest subject and the latest e-mail each way, as the typed rows give them.
        for_decisions = (await store.messages_for_decisions(conn, [ids["due"]]))[ids["due"]]
        assert for_decisions.messages == tuple(map(thread_message, loaded[ids["due"]]))
        assert for_decisions.shown_ids == ["<a@x>"]
        assert for_decisions.subject == "Offer"
        assert for_decisions.last_outbound_at == when
        assert for_decisions.last_inbound_at == when + timedelta(days=1)
        assert await store.messages_for_decisions(conn, []) == {}


async def test_the_lookups_use_their_indexes(sqlite_url: str) -> None:
    """On SQLite, EXPLAIN QUERY PLAN shows an index search, never a scan of the table."""
    from sqlalchemy.dialects import sqlite

    from app.storage.engine import make_engine

    engine = make_engine(sqlite_url)
    queries = [
        "SELECT * FROM threads WHERE threads.dirty = 1 "
        "ORDER BY threads.mailbox_id, threads.id LIMIT 1000",
        "SELECT * FROM threads WHERE threads.next_check_at <= '2026-11-23 10:00:00.000000' "
        "ORDER BY threads.next_check_at LIMIT 1000",
        "SELECT * FROM threads WHERE threads.dirty = 1 AND threads.mailbox_id = 1 "
        "ORDER BY threads.mailbox_id, threads.id LIMIT 1000",
        "SELECT * FROM threads WHERE threads.next_check_at <= '2026-11-23 10:00:00.000000' "
        "AND threads.mailbox_id = 1 ORDER BY threads.next_check_at LIMIT 1000",
        # holding_in_state: a baseline's end, its early quiet threads still as decided
        "SELECT * FROM threads WHERE threads.mailbox_id = 1 AND threads.state = 'quiet' "
        "AND threads.dirty = 0 AND (threads.next_check_at IS NULL "
        "OR threads.next_check_at > '2026-11-23 10:00:00.000000') AND threads.id > 0 "
        "ORDER BY threads.id LIMIT 5000",
    ]
    # The queries above are what the storage functions send (checked here, then planned).
    dirty = (
        select(threads)
        .where(threads.c.dirty == true())
        .order_by(threads.c.mailbox_id, threads.c.id)
    )
    assert "WHERE threads.dirty = 1 ORDER BY threads.mailbox_id, threads.id" in str(
        dirty.compile(dialect=sqlite.dialect())
    )
    try:
        async with engine.connect() as conn:
            for query in queries:
                plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}")).all()
                details = " ".join(str(row[-1]) for row in plan)
                assert "USING INDEX ix_threads_" in details, (query, details)
                assert "TEMP B-TREE" not in details, (query, details)
    finally:
        await engine.dispose()


async def test_events_of_a_batch_are_written_together(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        before = await outbox.enqueue(
            conn, user_id=1, type="thread.quiet", payload={"n": 0}, now=ctx.clock()
        )
        ids = await outbox.enqueue_many(
            conn,
            [
                NewEvent(user_id=1, type="thread.quiet", payload={"n": 1}, thread_id=7),
                NewEvent(user_id=1, type="thread.closed", payload={"n": 2}, mailbox_id=3),
            ],
            now=ctx.clock(),
        )
        assert ids[0] > before and ids[1] == ids[0] + 1
        after = await outbox.enqueue(
            conn, user_id=1, type="thread.quiet", payload={"n": 3}, now=ctx.clock()
        )
        assert after > ids[1]
        rows = (await conn.execute(select(events).order_by(events.c.id))).mappings().all()
    assert [(r["type"], r["payload"]["n"]) for r in rows] == [
        ("thread.quiet", 0),
        ("thread.quiet", 1),
        ("thread.closed", 2),
        ("thread.quiet", 3),
    ]
    assert await outbox.enqueue_many(conn, [], now=ctx.clock()) == []


def test_backtest_command(tmp_path: Path) -> None:
    env = cli_env(secret_key=TEST_SECRET_KEY, database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db")
    made = run_cli(
        "user", "create", "--email", "rep@seller.example", "--password-stdin",
        env=env, cwd=tmp_path, stdin="long-enough-pw\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    now = datetime.now(UTC).replace(microsecond=0)
    box = mailbox.mbox(tmp_path / "mail.mbox", create=True)
    for days, subject, answer in [(30, "Old deal", 20), (25, "Silent deal", None)]:
        sent = now - timedelta(days=days)
        box.add(
            make_message(
                from_=REP, to=[PROSPECT], subject=subject, date=sent, message_id=f"{days}@s"
            )
        )
        if answer is not None:
            box.add(
                make_message(
                    from_=PROSPECT,
                    to=[REP],
                    subject=f"Re: {subject}",
                    date=now - timedelta(days=answer),
                    message_id=f"{days}r@b",
                    references=[f"{days}@s"],
                )
            )
    box.flush()
    box.close()
    imported = run_cli(
        "import", str(tmp_path / "mail.mbox"), "--email", "rep@seller.example",
        "--mailbox", "Work", "--address", REP, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr

    result = run_cli("backtest", "Work", "--days", "60", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].split() == [
        "week",
        "of",
        "flagged",
        "quiet",
        "answered",
        "later",
        "false",
        "alarms",
    ]
    assert lines[-1] == (
        "backtest: 60 days, 2 threads, 2 flagged quiet, 1 answered later anyway "
        "(false-alarm rate 50.0%)"
    )
    unknown = run_cli("backtest", "Nope", env=env, cwd=tmp_path)
    assert unknown.returncode == 1 and "no mailbox with id or name 'Nope'" in unknown.stderr
    bad = run_cli("backtest", "Work", "--days", "0", env=env, cwd=tmp_path)
    assert bad.returncode == 1 and "days must be between 1 and 730" in bad.stderr


async def test_the_scheduler_wakes_at_the_earliest_check(ctx: Context, tmp_path: Path) -> None:
    """A thread snoozed for two seconds is quiet again within seconds: the scheduler sleeps
    until the earliest next_check_at, not its 30-second maximum."""
    await accounts.create_user(ctx, email="rep@seller.example", password="pw-123456789")
    box = mailbox.mbox(tmp_path / "mail.mbox", create=True)
    sent = datetime.now(UTC) - timedelta(days=12)
    box.add(make_message(from_=REP, to=[PROSPECT], subject="Deal", date=sent, message_id="d@s"))
    box.flush()
    box.close()
    await imports.import_mail(
        ctx, tmp_path / "mail.mbox", email="rep@seller.example", mailbox_name="W", addresses=[REP]
    )
    user = await accounts.authenticate(
        ctx, await accounts.create_token(ctx, email="rep@seller.example")
    )
    (item,), _ = await thread_service.list_threads(ctx, user_id=user.id)
    assert item.state == "quiet"
    until = datetime.now(UTC) + timedelta(seconds=2)
    snoozed = await thread_actions.snooze(ctx, user_id=user.id, thread_id=item.id, until=until)
    assert snoozed.state == "snoozed"

    workers = Workers(ctx)
    workers.start()
    try:
        deadline = time.monotonic() + 12
        while time.monotonic() < deadline:
            shown = await thread_service.get_thread(ctx, user_id=user.id, thread_id=item.id)
            if shown.thread.state == "quiet":
                break
            await asyncio.sleep(0.2)
        assert shown.thread.state == "quiet", shown
        assert workers_module.SCHEDULER_MAX_SLEEP > 12  # so only the early wake-up explains it
    finally:
        await workers.stop()
    types = [
        e.type
        for e in await event_service.list_events(ctx, user_id=user.id, after=None, limit=100)
        if e.type.startswith("thread.")  # the import's draft.created is not the scheduler's
    ]
    assert types == ["thread.quiet", "thread.quiet"]
