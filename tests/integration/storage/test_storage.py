"""The storage layer on both backends: migrations, idempotent upserts, threading, leases."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import Identity
from app.mail.pipeline import prepare_message
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage.tables import (
    folders,
    message_locations,
    messages,
    metadata,
    thread_keys,
    threads,
)
from tests.factories import make_mailbox

pytestmark = pytest.mark.integration
REP_ADDR = "rep@seller.example"
REP = Identity.from_addresses([REP_ADDR])
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def test_migrations_match_the_schema(ctx: Context) -> None:
    def diff(sync_conn: object) -> list[object]:
        migration = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(migration, metadata))

    async with ctx.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


def header(
    msgid: str,
    *,
    refs: str = "",
    sender: str = "anna@buyer.example",
    minutes: int = 0,
    to: str = "rep@seller.example",
) -> bytes:
    date = (T0 + timedelta(minutes=minutes)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    lines = [
        f"Message-ID: {msgid}",
        f"From: {sender}",
        f"To: {to}",
        "Subject: hello",
        f"Date: {date}",
    ]
    if refs:
        lines.append(f"References: {refs}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2), (2, 0, 1)])
async def test_threads_do_not_depend_on_arrival_order(ctx: Context, order: tuple[int, ...]) -> None:
    raw = [
        header("<a@x>", sender="rep@seller.example"),
        header("<b@x>", refs="<a@x>", minutes=5),
        header("<c@x>", refs="<a@x> <b@x>", sender="rep@seller.example", minutes=10),
    ]
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        for i in order:  # one batch per message: the worst case for merging
            m = prepare_message(raw[i], identity=REP, fallback_date=T0)
            await message_store.store_messages(
                conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
            )
        from app.storage.threads import message_ids_by_thread, threads_to_evaluate

        rows = await threads_to_evaluate(conn, now=T0, mailbox_id=mailbox_id)
        assert len(rows) == 1
        ids = await message_ids_by_thread(conn, [rows[0].id])
        assert ids[rows[0].id] == ["<a@x>", "<b@x>", "<c@x>"]


async def test_a_merged_threads_id_is_never_given_to_another_thread(ctx: Context) -> None:
    """Webhook consumers keep thread ids: the newest thread merged away must not come back
    as the id of a different conversation (SQLite's MAX(id)+1 would hand it out again)."""

    async def store(conn: AsyncConnection, raw: bytes) -> set[int]:
        m = prepare_message(raw, identity=REP, fallback_date=T0)
        stored = await message_store.store_messages(
            conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
        )
        return stored.touched_threads

    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        (first,) = await store(conn, header("<a@x>"))
        (merged_away,) = await store(conn, header("<b@x>", minutes=1))
        assert merged_away > first
        (bridge,) = await store(conn, header("<c@x>", refs="<a@x> <b@x>", minutes=2))
        assert bridge == first  # the older thread absorbed the newer one
        (fresh,) = await store(conn, header("<d@x>", minutes=3))
    assert fresh not in {first, merged_away}
    assert fresh > merged_away


async def test_storing_twice_changes_nothing(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        folders = await mailbox_store.ensure_folders(conn, mailbox_id, {"INBOX": None})
        m = prepare_message(
            header("<a@x>"),
            identity=REP,
            fallback_date=T0,
            folder_id=folders["INBOX"]["id"],
            uid=1,
            uidvalidity=7,
        )
        first = await message_store.store_messages(
            conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=[m, m]
        )
        second = await message_store.store_messages(
            conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
        )
    assert first.new_messages == 1
    assert second.new_messages == 0


async def test_only_one_worker_holds_a_mailbox(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
    lease = timedelta(seconds=60)
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "worker-a", lease, now=datetime.now(UTC)
        )
    async with ctx.engine.begin() as conn:
        assert not await mailbox_store.claim_lease(
            conn, mailbox_id, "worker-b", lease, now=datetime.now(UTC)
        )
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "worker-a", lease, now=datetime.now(UTC)
        )  # renewal
    async with ctx.engine.begin() as conn:
        await mailbox_store.release_lease(conn, mailbox_id, "worker-a")
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "worker-b", lease, now=datetime.now(UTC)
        )


async def test_an_expired_lease_is_taken_over(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "dead", timedelta(seconds=-1), now=datetime.now(UTC)
        )
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "alive", timedelta(seconds=60), now=datetime.now(UTC)
        )


async def test_secrets_are_stored_encrypted(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert row is not None
    assert b"correct-horse-battery" not in row["secret_enc"]
    assert ctx.box.decrypt(row["secret_enc"]) == "correct-horse-battery"


async def _store(
    conn: AsyncConnection,
    user_id: int,
    mailbox_id: int,
    raws: list[bytes],
    *,
    folder_id: int | None = None,
    first_uid: int = 1,
) -> message_store.StoreResult:
    """One batch, the messages at consecutive UIDs of `folder_id` (UIDVALIDITY 7), if given."""
    batch = [
        prepare_message(
            raw,
            identity=REP,
            fallback_date=T0,
            folder_id=folder_id,
            uid=first_uid + i,
            uidvalidity=7,
        )
        for i, raw in enumerate(raws)
    ]
    return await message_store.store_messages(
        conn, now=T0, mailbox_id=mailbox_id, user_id=user_id, batch=batch
    )


async def _thread_of(conn: AsyncConnection) -> dict[str, int | None]:
    rows = await conn.execute(select(messages.c.message_key, messages.c.thread_id))
    return {key: thread_id for key, thread_id in rows}


async def test_a_batch_threads_replies_to_earlier_and_to_its_own_messages(ctx: Context) -> None:
    """The first sync's shape: a reply to a message stored in an earlier batch joins its
    thread (and marks it dirty); a reply to a message of the same batch, or to one that
    comes later, shares a new thread; everything else gets its own."""
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        await _store(conn, user_id, mailbox_id, [header("<out1@x>", sender=REP_ADDR)])
        await conn.execute(update(threads).values(dirty=False))
        stored = await _store(
            conn,
            user_id,
            mailbox_id,
            [
                header("<in1@x>", refs="<out1@x>", minutes=1),
                header("<out2@x>", sender=REP_ADDR, minutes=2),
                header("<in2@x>", refs="<out2@x>", minutes=3),
                header("<in3@x>", refs="<later@x>", minutes=4),
                header("<news@x>", minutes=5),
            ],
        )
        await _store(conn, user_id, mailbox_id, [header("<later@x>", minutes=6)])
        thread = await _thread_of(conn)
        dirty = {t for (t,) in await conn.execute(select(threads.c.id).where(threads.c.dirty))}
    assert stored.new_messages == 5
    assert thread["<in1@x>"] == thread["<out1@x>"]
    assert thread["<in2@x>"] == thread["<out2@x>"] != thread["<out1@x>"]
    assert thread["<later@x>"] == thread["<in3@x>"]
    assert len(set(thread.values())) == 4
    assert stored.touched_threads == {
        thread[k] for k in ("<in1@x>", "<in2@x>", "<in3@x>", "<news@x>")
    }
    assert thread["<out1@x>"] in dirty  # an existing thread with new mail


async def test_stored_values_read_back_as_written(ctx: Context) -> None:
    """Rows go to the driver as ready values: they must read back as SQLAlchemy wrote them."""
    raw = (
        b"Message-ID: <a@x>\r\nFrom: Anna <Anna@Buyer.example>\r\nTo: rep@seller.example, "
        b"b@x.example\r\nCc: \xc3\xa9l\xc3\xa9na@x.example\r\nSubject: Re: caf\xc3\xa9\r\n"
        b"In-Reply-To: <p@x>\r\nDate: Mon, 02 Nov 2026 10:00:00 +0100\r\n\r\n"
    )
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        m = prepare_message(raw, identity=REP, fallback_date=T0)
        await message_store.store_messages(
            conn,
            now=T0,
            mailbox_id=mailbox_id,
            user_id=user_id,
            batch=[replace(m, details={"body_read": True, "x": [1, "é"]}, gm_msgid=5)],
        )
        row = (await conn.execute(select(messages))).mappings().one()
        thread = (await conn.execute(select(threads))).mappings().one()
    assert row["has_message_id"] is True
    assert row["in_reply_to"] == ["<p@x>"] and row["references"] == []
    assert row["from_addr"] == "anna@buyer.example" and row["from_name"] == "Anna"
    assert row["to_addrs"] == ["rep@seller.example", "b@x.example"]
    assert row["signals"] == m.facts.signals and row["defects"] == list(m.facts.defects)
    assert row["date"] == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert row["details"] == {"body_read": True, "x": [1, "é"]}
    assert row["gm_msgid"] == 5 and row["gm_thrid"] is None and row["text_prefix"] is None
    assert row["subject"] == "Re: café" and row["kind"] == m.classification.kind.value
    assert thread["subject"] == "Re: café" and thread["state"] is None
    assert thread["dirty"] is True and thread["needs_response"] is False
    assert thread["created_at"].tzinfo is not None
    async with ctx.engine.connect() as conn:  # compared as text on SQLite: same format
        later = await conn.execute(
            select(messages.c.id).where(messages.c.date >= datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        )
        assert len(later.all()) == 1


async def test_a_thread_key_row_for_a_messages_own_key_still_threads(ctx: Context) -> None:
    """Databases written before keep a thread_keys row for every message's own key too."""
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        await _store(conn, user_id, mailbox_id, [header("<a@x>"), header("<b@x>", minutes=1)])
        thread = await _thread_of(conn)
        await conn.execute(
            insert(thread_keys).values(
                mailbox_id=mailbox_id, message_key="<b@x>", thread_id=thread["<b@x>"]
            )
        )
        await _store(conn, user_id, mailbox_id, [header("<c@x>", refs="<a@x> <b@x>", minutes=2)])
        thread = await _thread_of(conn)
        keys = {
            k: t
            for k, t in await conn.execute(
                select(thread_keys.c.message_key, thread_keys.c.thread_id)
            )
        }
    assert thread["<a@x>"] == thread["<b@x>"] == thread["<c@x>"]
    assert keys == {"<b@x>": thread["<a@x>"]}  # moved with the merge


async def test_messages_needing_body_finds_only_what_matters(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        rows = await mailbox_store.ensure_folders(conn, mailbox_id, {"INBOX": None, "Sent": None})
        await conn.execute(update(folders).values(uidvalidity=7))
        inbox, sent = rows["INBOX"]["id"], rows["Sent"]["id"]
        await _store(
            conn,
            user_id,
            mailbox_id,
            [header("<out@x>", sender=REP_ADDR, to="anna@buyer.example")],
            folder_id=sent,
        )
        await _store(
            conn,
            user_id,
            mailbox_id,
            [
                header("<r2@x>", refs="<out@x>", minutes=2),
                header("<r1@x>", refs="<out@x>", minutes=1),
                header("<cold@x>", minutes=3),  # an answer to nothing the rep wrote
                header("<gone@x>", refs="<out@x>", minutes=4),
            ],
            folder_id=inbox,
            first_uid=10,
        )
        await conn.execute(  # <gone@x> lives under an old UIDVALIDITY only
            update(message_locations).where(message_locations.c.uid == 13).values(uidvalidity=6)
        )
    async with ctx.engine.connect() as conn:
        found = await message_store.messages_needing_body(conn, mailbox_id, limit=10)
        first = await message_store.messages_needing_body(conn, mailbox_id, limit=1)
    assert [(r.message_key, r.folder_name, r.uid) for r in found] == [
        ("<r2@x>", "INBOX", 10),
        ("<r1@x>", "INBOX", 11),
    ]
    assert [r.message_key for r in first] == ["<r2@x>"]  # oldest stored first
    async with ctx.engine.begin() as conn:
        await message_store.save_body_readings(
            conn,
            [
                message_store.BodyReading(
                    message_id=r.id, kind="reply", kind_reason="", details={}, text_prefix=None
                )
                for r in found
            ],
        )
        assert await message_store.messages_needing_body(conn, mailbox_id, limit=10) == []


async def test_a_batch_bridging_a_thread_another_of_its_messages_joins(ctx: Context) -> None:
    """Two groups of one batch share a stored thread that one of them merges away: both end
    in the surviving thread (not in the deleted one)."""
    async with ctx.engine.begin() as conn:
        user_id, mailbox_id = await make_mailbox(conn, ctx)
        await _store(conn, user_id, mailbox_id, [header("<a@x>")])
        await _store(conn, user_id, mailbox_id, [header("<b@x>", minutes=1)])
        await _store(conn, user_id, mailbox_id, [header("<c@x>", refs="<b@x>", minutes=2)])
        stored = await _store(
            conn,
            user_id,
            mailbox_id,
            [
                header("<d@x>", refs="<c@x>", minutes=3),  # its group: c's thread only
                header("<e@x>", refs="<a@x> <b@x>", minutes=4),  # merges b's thread into a's
            ],
        )
        thread = await _thread_of(conn)
        stored_threads = {t for (t,) in await conn.execute(select(threads.c.id))}
    assert len(set(thread.values())) == 1
    assert stored_threads == set(thread.values()) == stored.touched_threads


async def test_postgresql_plans_each_statement_for_its_values(database_url_pg: str) -> None:
    """asyncpg prepares every statement; a generic plan made while a first sync's tables were
    nearly empty (a sequential scan) must not be kept as they grow: the key lookup of a
    50,000-message first sync took 26 s with it, 0.4 s without."""
    from sqlalchemy import text

    from app.storage.engine import make_engine

    engine = make_engine(database_url_pg)
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
    finally:
        await engine.dispose()
    assert mode == "force_custom_plan"
