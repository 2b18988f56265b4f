"""One IDLE watcher per mailbox across all worker processes: the watch lease.

Every worker that syncs an IDLE-capable mailbox tries to watch it; only the holder of the
mailbox's watch lease opens an IDLE connection. A released watch is free at once, an expired
one (a dead worker's) is taken over by the next sync, and a watcher whose lease was taken
stops."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.mail.imap import ImapSession
from app.services import sync as sync_service
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage.engine import reading
from app.workers import Workers
from tests.factories import ImapUser, connect, make_mailbox, now_utc, populate

pytestmark = pytest.mark.integration
LEASE = timedelta(seconds=120)


# --- storage: the one-statement claim, on SQLite and PostgreSQL ---------------------------


async def claim(ctx: Context, mailbox_id: int, owner: str, lease: timedelta = LEASE) -> bool:
    async with ctx.engine.begin() as conn:
        return await mailbox_store.claim_watch(
            conn, mailbox_id, owner, lease, now=datetime.now(UTC)
        )


async def release(ctx: Context, mailbox_id: int, owner: str) -> None:
    async with ctx.engine.begin() as conn:
        await mailbox_store.release_watch(conn, mailbox_id, owner)


async def watch_of(ctx: Context, mailbox_id: int) -> tuple[str | None, Any]:
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, mailbox_id)
    assert mailbox is not None
    return mailbox["watch_owner"], mailbox["watch_expires_at"]


async def expire_watch(ctx: Context, mailbox_id: int, owner: str) -> None:
    """What a worker that died holding the watch leaves behind once its lease ran out."""
    async with ctx.engine.begin() as conn:
        await mailbox_store.update_mailbox(
            conn,
            mailbox_id,
            {"watch_owner": owner, "watch_expires_at": datetime.now(UTC) - timedelta(seconds=1)},
            now=datetime.now(UTC),
        )


async def test_one_owner_holds_the_watch_and_a_release_frees_it_at_once(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)

    assert await claim(ctx, mailbox_id, "worker-a")
    assert not await claim(ctx, mailbox_id, "worker-b")
    assert await claim(ctx, mailbox_id, "worker-a")  # the heartbeat renews it
    owner, expires = await watch_of(ctx, mailbox_id)
    assert owner == "worker-a" and expires > datetime.now(UTC) + LEASE - timedelta(seconds=30)

    await release(ctx, mailbox_id, "worker-b")  # not b's to release
    assert not await claim(ctx, mailbox_id, "worker-b")

    await release(ctx, mailbox_id, "worker-a")
    assert await watch_of(ctx, mailbox_id) == (None, None)
    assert await claim(ctx, mailbox_id, "worker-b")  # free at once, no waiting for expiry
    assert not await claim(ctx, mailbox_id, "worker-a")


async def test_an_expired_watch_is_taken_over_and_its_old_owner_loses_it(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
    assert await claim(ctx, mailbox_id, "worker-a")
    await expire_watch(ctx, mailbox_id, "worker-a")

    assert await claim(ctx, mailbox_id, "worker-b")
    assert (await watch_of(ctx, mailbox_id))[0] == "worker-b"
    assert not await claim(ctx, mailbox_id, "worker-a")  # its next heartbeat: lost, it stops


async def test_the_watch_lease_is_independent_of_the_sync_lease(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
        assert await mailbox_store.claim_lease(
            conn, mailbox_id, "worker-b", LEASE, now=datetime.now(UTC)
        )
    assert await claim(ctx, mailbox_id, "worker-a")  # b syncs while a watches
    async with ctx.engine.begin() as conn:
        await mailbox_store.release_lease(conn, mailbox_id, "worker-b")
    assert (await watch_of(ctx, mailbox_id))[0] == "worker-a"


async def test_concurrent_claims_have_exactly_one_winner(ctx: Context) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
    for round_ in range(5):
        owners = [f"worker-{round_}-{i}" for i in range(8)]
        won = await asyncio.gather(*(claim(ctx, mailbox_id, o) for o in owners))
        assert sum(won) == 1
        winner = owners[won.index(True)]
        assert (await watch_of(ctx, mailbox_id))[0] == winner
        await release(ctx, mailbox_id, winner)


async def test_the_heartbeat_keeps_the_watch_and_gives_it_up_when_it_cannot_renew(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ctx.engine.begin() as conn:
        _, mailbox_id = await make_mailbox(conn, ctx)
    # A short lease (below what settings allow) so that several beats fit in a second.
    ctx.settings = ctx.settings.model_copy(update={"lease_seconds": 0.6})
    loop = asyncio.get_running_loop()
    assert await claim(ctx, mailbox_id, "worker-a", timedelta(seconds=0.6))
    lost = threading.Event()
    beat = asyncio.create_task(
        sync_service._keep_watch(ctx, mailbox_id, "worker-a", lost, held_until=loop.time() + 0.6)
    )
    await asyncio.sleep(1.5)  # longer than the lease: only the heartbeat keeps it
    assert not lost.is_set()
    assert not await claim(ctx, mailbox_id, "worker-b")

    async def database_gone(*_args: object) -> bool:
        raise OSError("database unreachable")

    monkeypatch.setattr(mailbox_store, "claim_watch", database_gone)
    # Unrenewable: the watcher stops by the time its lease runs out, before anyone takes over.
    await asyncio.wait_for(beat, 2)
    assert lost.is_set()


# --- workers and Dovecot: at most one IDLE connection per mailbox ---------------------------


class IdleConnections:
    """Counts the IDLE connections open at once (idle_until_news runs in executor threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0
        self.most = 0
        self.total = 0


@pytest.fixture
def idle_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[IdleConnections]:
    seen = IdleConnections()
    original = ImapSession.idle_until_news

    def counted(self: ImapSession, folder: str, **kwargs: Any) -> bool:
        with seen.lock:
            seen.open += 1
            seen.total += 1
            seen.most = max(seen.most, seen.open)
        try:
            return original(self, folder, **kwargs)
        finally:
            with seen.lock:
                seen.open -= 1

    monkeypatch.setattr(ImapSession, "idle_until_news", counted)
    yield seen


async def wait_for(check: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def sync(workers: Workers, mailbox_id: int) -> None:
    """One pass of `workers`' sync runner over the mailbox, then one round of its watch keeper
    (which watches the mailbox if it may)."""
    await workers._sync_one(mailbox_id)
    await workers._rebalance(workers.ctx.settings.imap_idle_mailboxes)


def watching(workers: Workers, mailbox_id: int) -> bool:
    return mailbox_id in workers._watchers


async def settled(ctx: Context, mailbox_id: int, expected: Workers, *others: Workers) -> bool:
    """`expected` holds the watch and runs its watcher; every other worker's watcher is gone."""
    owner, _ = await watch_of(ctx, mailbox_id)
    if any(watching(w, mailbox_id) for w in others):
        return False
    return owner == expected.owner and watching(expected, mailbox_id)


async def test_two_workers_never_both_watch_a_mailbox(
    ctx: Context, imap_user: ImapUser, idle_connections: IdleConnections
) -> None:
    populate(imap_user, now_utc())
    ctx.settings = ctx.settings.model_copy(update={"sync_interval_seconds": 600})
    _, mailbox_id = await connect(ctx, imap_user)
    a = Workers(ctx, owner="worker-a")
    b = Workers(ctx, owner="worker-b")
    try:
        # a syncs first and watches; b syncs next (the sync lease rotates) and does not.
        await sync(a, mailbox_id)
        assert await wait_for(lambda: settled(ctx, mailbox_id, a, b), 10)
        await sync(b, mailbox_id)
        await asyncio.sleep(0.5)
        assert await settled(ctx, mailbox_id, a, b)
        assert await wait_for(lambda: _true(idle_connections.open == 1), 10)
        for _ in range(3):  # however often the lease rotates
            await sync(b, mailbox_id)
            await sync(a, mailbox_id)
        await asyncio.sleep(0.5)
        assert await settled(ctx, mailbox_id, a, b)

        # a stops: its watch is released at once and b's next sync takes it.
        await a.stop()
        assert await watch_of(ctx, mailbox_id) == (None, None)
        await sync(b, mailbox_id)
        assert await wait_for(lambda: settled(ctx, mailbox_id, b, a), 10)
    finally:
        await a.stop()
        await b.stop()
    assert await watch_of(ctx, mailbox_id) == (None, None)
    assert idle_connections.most == 1


async def test_a_dead_workers_watch_is_taken_over_once_it_expires(
    ctx: Context, imap_user: ImapUser, idle_connections: IdleConnections
) -> None:
    populate(imap_user, now_utc())
    ctx.settings = ctx.settings.model_copy(update={"sync_interval_seconds": 600})
    _, mailbox_id = await connect(ctx, imap_user)
    # A worker that died holding the watch: its lease is still live, so nobody else watches.
    assert await claim(ctx, mailbox_id, "dead-worker")
    b = Workers(ctx, owner="worker-b")
    try:
        await sync(b, mailbox_id)
        await asyncio.sleep(0.5)
        assert (await watch_of(ctx, mailbox_id))[0] == "dead-worker"
        assert not watching(b, mailbox_id)
        assert idle_connections.total == 0

        await expire_watch(ctx, mailbox_id, "dead-worker")
        await sync(b, mailbox_id)  # the next sync after the lease ran out takes it over
        assert await wait_for(lambda: settled(ctx, mailbox_id, b), 10)
        assert await wait_for(lambda: _true(idle_connections.open == 1), 10)
    finally:
        await b.stop()
    assert await watch_of(ctx, mailbox_id) == (None, None)


async def test_a_watcher_whose_lease_is_taken_stops(
    ctx: Context, imap_user: ImapUser, idle_connections: IdleConnections
) -> None:
    populate(imap_user, now_utc())
    # The shortest lease allowed: the heartbeat runs every 10/3 s.
    ctx.settings = ctx.settings.model_copy(
        update={"sync_interval_seconds": 600, "lease_seconds": 10.0}
    )
    _, mailbox_id = await connect(ctx, imap_user)
    a = Workers(ctx, owner="worker-a")
    try:
        await sync(a, mailbox_id)
        assert await wait_for(lambda: settled(ctx, mailbox_id, a), 10)
        assert await wait_for(lambda: _true(idle_connections.open == 1), 10)
        # Say a's database stalled past its lease and another worker took the watch over.
        await expire_watch(ctx, mailbox_id, "worker-a")
        assert await claim(ctx, mailbox_id, "worker-b")
        # a's next heartbeat finds the watch gone: it closes its IDLE connection, and does not
        # release what is now b's.
        assert await wait_for(lambda: _true(not watching(a, mailbox_id)), 10)
        assert idle_connections.open == 0
        assert (await watch_of(ctx, mailbox_id))[0] == "worker-b"
        await sync(a, mailbox_id)  # a's later syncs leave b's watch alone
        await asyncio.sleep(0.5)
        assert not watching(a, mailbox_id)
        assert (await watch_of(ctx, mailbox_id))[0] == "worker-b"
    finally:
        await a.stop()


async def test_running_workers_hold_one_idle_connection_while_syncs_rotate(
    ctx: Context,
    imap_user: ImapUser,
    idle_connections: IdleConnections,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two running workers (their loops, not single passes) share a mailbox that is due
    again and again: both sync it, only one ever holds an IDLE connection to it."""
    populate(imap_user, now_utc())
    ctx.settings = ctx.settings.model_copy(update={"sync_interval_seconds": 600})
    _, mailbox_id = await connect(ctx, imap_user)
    synced_by: Counter[str] = Counter()
    original = sync_service.sync_mailbox

    async def recorded(ctx: Context, mailbox_id: int, **kwargs: Any) -> Any:
        outcome = await original(ctx, mailbox_id, **kwargs)
        synced_by[kwargs["owner"]] += 1
        return outcome

    monkeypatch.setattr(sync_service, "sync_mailbox", recorded)
    a = Workers(ctx, owner="worker-a")
    b = Workers(ctx, owner="worker-b")
    a.start()
    b.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and min(synced_by[w.owner] for w in (a, b)) < 2:
            async with ctx.engine.begin() as conn:  # due now: whichever wakes first syncs it
                await mailbox_store.update_mailbox(
                    conn, mailbox_id, {"next_sync_at": datetime.now(UTC)}, now=datetime.now(UTC)
                )
            first, second = (a, b) if sum(synced_by.values()) % 2 else (b, a)
            first._wake.set()  # take turns: the lease rotates as it does across processes
            await asyncio.sleep(0.3)
            second._wake.set()
            await asyncio.sleep(0.5)
        assert synced_by["worker-a"] >= 2 and synced_by["worker-b"] >= 2, synced_by
        assert await wait_for(lambda: _true(idle_connections.open == 1), 10)
        owner, _ = await watch_of(ctx, mailbox_id)
        holder, other = (a, b) if owner == "worker-a" else (b, a)
        assert await wait_for(lambda: settled(ctx, mailbox_id, holder, other), 10)
    finally:
        await a.stop()
        await b.stop()
    assert idle_connections.most == 1
    assert await watch_of(ctx, mailbox_id) == (None, None)


async def _true(value: bool) -> bool:
    return value
