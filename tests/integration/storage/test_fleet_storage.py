"""The statements workers share mailboxes with, on SQLite and PostgreSQL: batch claims of due
syncs and of free watches, releasing everything at stop, presence, and the next poll that an
IDLE watcher's news must not be overwritten by."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import workers as worker_store
from app.storage.engine import reading
from tests.factories import make_mailbox

LEASE = timedelta(seconds=60)


async def make_mailboxes(ctx: Context, count: int) -> list[int]:
    async with ctx.engine.begin() as conn:
        user_id, first = await make_mailbox(conn, ctx)
        ids = [first]
        row = await mailbox_store.get_mailbox(conn, first)
        assert row is not None
        for n in range(1, count):
            values = {k: row[k] for k in ("imap_host", "imap_port", "imap_security",
                                           "imap_username", "auth_method", "secret_enc",
                                           "addresses", "timezone", "rules")}  # fmt: skip
            ids.append(
                await mailbox_store.create_mailbox(
                    conn, {**values, "user_id": user_id, "name": f"Box {n}"}, now=datetime.now(UTC)
                )
            )
    return ids


async def test_due_syncs_are_claimed_by_one_worker_each_and_only_as_many_as_asked(
    ctx: Context,
) -> None:
    ids = await make_mailboxes(ctx, 10)

    async def claim(owner: str) -> list[int]:
        async with ctx.engine.begin() as conn:
            return await mailbox_store.claim_due_syncs(
                conn, owner, datetime.now(UTC), LEASE, 4, real=datetime.now(UTC)
            )

    claimed = await asyncio.gather(*(claim(f"w{i}") for i in range(4)))
    flat = [m for batch in claimed for m in batch]
    assert all(len(batch) <= 4 for batch in claimed)
    assert sorted(flat) == sorted(ids)  # 10 due, 16 asked for: each claimed exactly once
    assert await claim("late") == []  # all leased
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.release_all(conn, "w0") == len(claimed[0])
    assert sorted(await claim("late")) == sorted(claimed[0])


async def test_free_watches_are_claimed_once_and_released_at_stop(ctx: Context) -> None:
    ids = await make_mailboxes(ctx, 6)
    async with ctx.engine.begin() as conn:
        for m in ids[:5]:  # first-synced; the sixth is not: nothing to watch yet
            await mailbox_store.set_status(conn, m, "ok", now=datetime.now(UTC), synced=True)
        await mailbox_store.set_status(
            conn, ids[4], "failed", "refused", now=datetime.now(UTC), synced=True
        )
        assert await mailbox_store.count_watchable(conn) == 4
        a = await mailbox_store.claim_unwatched(
            conn, "a", datetime.now(UTC), LEASE, 3, skip=[ids[0]]
        )
        b = await mailbox_store.claim_unwatched(conn, "b", datetime.now(UTC), LEASE, 3)
    assert a == ids[1:4]
    assert b == [ids[0]]
    async with ctx.engine.begin() as conn:
        assert await mailbox_store.release_all(conn, "a") == 3
        assert (
            await mailbox_store.claim_unwatched(conn, "b", datetime.now(UTC), LEASE, 9) == ids[1:4]
        )


async def test_live_workers_are_counted_until_they_stop_or_age_out(ctx: Context) -> None:
    now = datetime.now(UTC)
    async with ctx.engine.begin() as conn:
        await worker_store.heartbeat(conn, "a", now - timedelta(seconds=30))
        await worker_store.heartbeat(conn, "b", now)
        await worker_store.heartbeat(conn, "b", now)  # a renewal, not a second row
        await worker_store.heartbeat(conn, "c", now)
    async with reading(ctx.engine) as conn:
        assert await worker_store.count_alive(conn, now, timedelta(seconds=15)) == 2
    async with ctx.engine.begin() as conn:
        await worker_store.forget(conn, "b", older_than=now - timedelta(seconds=15))
    async with reading(ctx.engine) as conn:
        assert await worker_store.count_alive(conn, now, timedelta(days=1)) == 1  # c only


async def test_news_during_a_pass_keeps_the_mailbox_due(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        started_with = (await mailbox_store.get_mailbox(conn, mailbox_id) or {})["next_sync_at"]
        later = datetime.now(UTC) + timedelta(seconds=60)
        assert await mailbox_store.schedule_next_sync(
            conn, mailbox_id, unless_moved_from=started_with, at=later
        )
        # The next pass starts with `later`; an IDLE watcher makes it due meanwhile.
        news_at = datetime.now(UTC)
        await mailbox_store.update_mailbox(
            conn, mailbox_id, {"next_sync_at": news_at}, now=datetime.now(UTC)
        )
        assert not await mailbox_store.schedule_next_sync(
            conn, mailbox_id, unless_moved_from=later, at=datetime.now(UTC) + timedelta(seconds=60)
        )
        row = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert row is not None and row["next_sync_at"] == news_at
