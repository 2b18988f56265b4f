"""Bulk writes by COPY on PostgreSQL (issue 19): the same rows as executemany, idempotent, and
inside the caller's transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.domain.incoming import NewMessage
from app.domain.model import Identity
from app.mail.pipeline import prepare_message
from app.services.context import Context
from app.storage import common, outbox
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage.common import insert_rows
from app.storage.tables import events, message_locations, messages, thread_keys, threads
from tests.conftest import _pg, _pg_url, make_settings
from tests.factories import make_mailbox

pytestmark = pytest.mark.integration
REP_ADDR = "rep@seller.example"
REP = Identity.from_addresses([REP_ADDR])
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
BATCH = 300  # well above COPY_MIN_ROWS, like a first sync's batch of 500


def _header(i: int) -> bytes:
    """A first sync's mix: the rep's mail, replies to it (some to mail never seen, which leave
    thread keys behind), newsletters; odd Unicode, a Cc, a date with an offset."""
    date = (T0 + timedelta(minutes=i)).strftime("%a, %d %b %Y %H:%M:%S +0100")
    lines = [f"Message-ID: <m{i}@x>", f"Date: {date}"]
    if i % 3 == 0:
        lines += [f"From: {REP_ADDR}", f"To: Anna <anna{i % 7}@buyer.example>", "Subject: offer"]
    elif i % 3 == 1:
        refs = f"<m{i - 1}@x> <lost{i}@x>"
        lines += [
            f"From: Anna Émile <anna{i % 7}@buyer.example>",
            f"To: {REP_ADDR}",
            "Cc: bob@buyer.example",
            "Subject: Re: offer — café",
            f"In-Reply-To: <m{i - 1}@x>",
            f"References: {refs}",
        ]
    else:
        lines += ["From: news@shop.example", f"To: {REP_ADDR}", "Subject: deals", "List-Id: <d>"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _batch(folder_id: int, count: int = BATCH) -> list[NewMessage]:
    return [
        prepare_message(
            _header(i),
            identity=REP,
            fallback_date=T0,
            folder_id=folder_id,
            uid=i + 1,
            uidvalidity=7,
            gm_msgid=i if i % 5 == 0 else None,
        )
        for i in range(count)
    ]


async def _first_sync(conn: AsyncConnection, ctx: Context) -> tuple[int, int]:
    """A mailbox, its folder and one stored batch, then the batch's events."""
    user_id, mailbox_id = await make_mailbox(conn, ctx)
    folder = (await mailbox_store.ensure_folders(conn, mailbox_id, {"INBOX": None}))["INBOX"]
    stored = await message_store.store_messages(
        conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=_batch(folder["id"])
    )
    assert stored.new_messages == BATCH
    await outbox.enqueue_many(
        conn,
        [
            outbox.NewEvent(
                user_id=user_id,
                mailbox_id=mailbox_id,
                thread_id=t,
                type="thread.quiet",
                payload={"thread_id": t, "why": "é"},
            )
            for t in sorted(stored.touched_threads)
        ],
        now=T0,
    )
    return user_id, folder["id"]


_TABLES = (messages, threads, thread_keys, message_locations, events)


async def _contents(conn: AsyncConnection) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in _TABLES:
        # By natural key (thread_keys, message_locations have no id); JSON has no ordering.
        order = [c for c in table.c if c.name in {"id", "message_key", "folder_id", "uid"}]
        rows = await conn.execute(select(table).order_by(*order))
        out[table.name] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def two_pg_urls(pg_template: str) -> Iterator[tuple[str, str]]:
    """Two fresh databases from one template: their sequences hand out the same ids."""
    names = [f"rs_test_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _pg_url(names[0]), _pg_url(names[1])
    for name in names:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables written by COPY: proof that a test went through it."""
    seen: list[str] = []
    real = common._copy_rows

    async def spy(conn: AsyncConnection, table: Any, *args: Any) -> None:
        seen.append(table.name)
        await real(conn, table, *args)

    monkeypatch.setattr(common, "_copy_rows", spy)
    return seen


async def test_a_first_sync_by_copy_stores_exactly_what_executemany_stores(
    two_pg_urls: tuple[str, str], copies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    contents, copy_from_rows = [], common.COPY_MIN_ROWS
    for url, copy_from in zip(two_pg_urls, (copy_from_rows, 10**9), strict=True):
        monkeypatch.setattr(common, "COPY_MIN_ROWS", copy_from)
        ctx = Context.create(make_settings(url))
        try:
            async with ctx.engine.begin() as conn:
                await _first_sync(conn, ctx)
            async with ctx.engine.connect() as conn:
                contents.append(await _contents(conn))
        finally:
            await ctx.close()
    by_copy, by_executemany = contents
    assert set(copies) == {"messages", "threads", "thread_keys", "message_locations", "events"}
    assert len(by_copy["messages"]) == BATCH and len(by_copy["message_locations"]) == BATCH
    assert len(by_copy["thread_keys"]) >= copy_from_rows  # the staging table's path ran
    for table in _TABLES:
        assert by_copy[table.name] == by_executemany[table.name], table.name


async def test_storing_the_same_batch_again_by_copy_adds_nothing(
    database_url_pg: str, copies: list[str]
) -> None:
    ctx = Context.create(make_settings(database_url_pg))
    try:
        async with ctx.engine.begin() as conn:
            user_id, folder_id = await _first_sync(conn, ctx)
        async with ctx.engine.connect() as conn:
            before = await _contents(conn)
        mailbox_id, thread_id = before["threads"][0][1], before["threads"][0][0]
        async with ctx.engine.begin() as conn:
            again = await message_store.store_messages(
                conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=_batch(folder_id)
            )
            # What COPY cannot skip by itself: rows stored already, a row twice in the batch.
            lost = range(1, 2 * BATCH, 3)  # the batch left <lost1@x> … <lost298@x> behind
            keys = [(mailbox_id, f"<lost{i}@x>", thread_id) for i in lost]
            keys += [(mailbox_id, "<twice@x>", thread_id)] * 2
            await insert_rows(
                conn,
                thread_keys,
                ("mailbox_id", "message_key", "thread_id"),
                keys,
                ignore_conflicts_on=["mailbox_id", "message_key"],
            )
        async with ctx.engine.connect() as conn:
            after = await _contents(conn)
    finally:
        await ctx.close()
    assert again.new_messages == 0
    assert copies.count("message_locations") == 2 and copies.count("thread_keys") == 2
    for table in ("messages", "threads", "message_locations", "events"):
        assert after[table] == before[table], table
    added = set(after["thread_keys"]) - set(before["thread_keys"])
    assert len(after["thread_keys"]) == len(before["thread_keys"]) + len(added)
    assert {key for _, key, _ in added} == {
        *(f"<lost{i}@x>" for i in lost if i >= BATCH),
        "<twice@x>",
    }


async def _count(engine: AsyncEngine, table: Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_a_failure_mid_batch_rolls_the_copy_back(ctx: Context, copies: list[str]) -> None:
    """On both backends: a bad row in the middle of a batch, or a failure after it, leaves
    nothing of the batch stored; the next batches on the same connection go in."""
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        one = prepare_message(_header(0), identity=REP, fallback_date=T0)
        stored = await message_store.store_messages(
            conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=[one]
        )
    (thread_id,) = stored.touched_threads
    names = ("mailbox_id", "message_key", "thread_id")
    good = [(mailbox_id, f"<k{i}@x>", thread_id) for i in range(200)]
    bad = [*good[:100], (mailbox_id, "<no-thread@x>", None), *good[100:]]  # NOT NULL

    with pytest.raises(IntegrityError):
        async with ctx.engine.begin() as conn:
            await insert_rows(conn, thread_keys, names, bad, ignore_conflicts_on=names[:2])
    with pytest.raises(IntegrityError):
        async with ctx.engine.begin() as conn:
            await insert_rows(conn, thread_keys, names, bad)
    with pytest.raises(RuntimeError):
        async with ctx.engine.begin() as conn:  # COPY as the transaction's first statement
            await insert_rows(conn, thread_keys, names, good)
            raise RuntimeError("the sync failed after storing")
    with pytest.raises(RuntimeError):
        async with ctx.engine.begin() as conn:
            await insert_rows(conn, thread_keys, names, good, ignore_conflicts_on=names[:2])
            raise RuntimeError("the sync failed after storing")
    assert await _count(ctx.engine, thread_keys) == 0

    async with ctx.engine.begin() as conn:  # the staging table twice in one transaction
        await insert_rows(conn, thread_keys, names, good[:150], ignore_conflicts_on=names[:2])
        # Gone between the two (as a merge moves keys): the first batch's rows stay gone.
        await conn.execute(delete(thread_keys).where(thread_keys.c.message_key == "<k0@x>"))
        await insert_rows(conn, thread_keys, names, good[100:], ignore_conflicts_on=names[:2])
    async with ctx.engine.connect() as conn:
        stored_keys = set((await conn.execute(select(thread_keys.c.message_key))).scalars())
    assert stored_keys == {key for _, key, _ in good[1:]}
    assert copies == (["thread_keys"] * 6 if ctx.engine.dialect.name == "postgresql" else [])
