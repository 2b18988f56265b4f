"""The storage layer on both backends: migrations, idempotent upserts, threading, leases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import Identity
from app.mail.pipeline import prepare_message
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage import users as user_store
from app.storage.tables import metadata

pytestmark = pytest.mark.integration
REP = Identity.from_addresses(["rep@seller.example"])
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def test_migrations_match_the_schema(ctx: Context) -> None:
    def diff(sync_conn: object) -> list[object]:
        migration = MigrationContext.configure(sync_conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(migration, metadata))

    async with ctx.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def make_mailbox(conn: AsyncConnection, ctx: Context) -> tuple[int, int]:
    user_id = await user_store.create_user(
        conn, email="u@seller.example", password_hash="x", is_admin=False
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
            "secret_enc": ctx.box.encrypt("correct-horse-battery"),
            "addresses": ["rep@seller.example"],
            "timezone": "UTC",
            "holiday_country": None,
            "holiday_subdiv": None,
            "rules": {},
        },
    )
    return user_id, mailbox_id


def header(
    msgid: str, *, refs: str = "", sender: str = "anna@buyer.example", minutes: int = 0
) -> bytes:
    date = (T0 + timedelta(minutes=minutes)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    lines = [
        f"Message-ID: {msgid}",
        f"From: {sender}",
        "To: rep@seller.example",
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
                conn, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
            )
        from app.storage.threads import message_ids_by_thread, threads_to_evaluate

        rows = await threads_to_evaluate(conn, now=T0, mailbox_id=mailbox_id)
        assert len(rows) == 1
        ids = await message_ids_by_thread(conn, [rows[0]["id"]])
        assert ids[rows[0]["id"]] == ["<a@x>", "<b@x>", "<c@x>"]


async def test_a_merged_threads_id_is_never_given_to_another_thread(ctx: Context) -> None:
    """Webhook consumers keep thread ids: the newest thread merged away must not come back
    as the id of a different conversation (SQLite's MAX(id)+1 would hand it out again)."""

    async def store(conn: AsyncConnection, raw: bytes) -> set[int]:
        m = prepare_message(raw, identity=REP, fallback_date=T0)
        stored = await message_store.store_messages(
            conn, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
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
            conn, mailbox_id=mailbox_id, user_id=user_id, batch=[m, m]
        )
        second = await message_store.store_messages(
            conn, mailbox_id=mailbox_id, user_id=user_id, batch=[m]
        )
    assert first.new_messages == 1
    assert second.new_messages == 0


async def test_only_one_worker_holds_a_mailbox(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
    lease = timedelta(seconds=60)
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(conn, mailbox_id, "worker-a", lease)
    async with ctx.engine.begin() as conn:
        assert not await mailbox_store.claim_lease(conn, mailbox_id, "worker-b", lease)
        assert await mailbox_store.claim_lease(conn, mailbox_id, "worker-a", lease)  # renewal
    async with ctx.engine.begin() as conn:
        await mailbox_store.release_lease(conn, mailbox_id, "worker-a")
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(conn, mailbox_id, "worker-b", lease)


async def test_an_expired_lease_is_taken_over(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        assert await mailbox_store.claim_lease(conn, mailbox_id, "dead", timedelta(seconds=-1))
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.claim_lease(conn, mailbox_id, "alive", timedelta(seconds=60))


async def test_secrets_are_stored_encrypted(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert row is not None
    assert b"correct-horse-battery" not in row["secret_enc"]
    assert ctx.box.decrypt(row["secret_enc"]) == "correct-horse-battery"
