"""Who works on what: the sync and IDLE-watch leases a worker takes on mailboxes, and the
presence rows by which workers share the watches out. Each function is one transaction;
the workers' loops (app.workers) decide when to call them."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta

from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import workers as worker_store
from app.storage.engine import reading

PRESENCE_KEPT = timedelta(days=1)  # rows of workers gone longer than this are deleted


@dataclass(frozen=True, kw_only=True)
class WatchCensus:
    alive: int  # workers seen within the window asked for, this one included
    watchable: int  # mailboxes that can be watched with IDLE


def _lease(ctx: Context) -> timedelta:
    return timedelta(seconds=ctx.settings.lease_seconds)


async def claim_sync(ctx: Context, mailbox_id: int, *, owner: str) -> bool:
    """Take one mailbox's sync lease for `owner`; False when another worker holds it."""
    async with ctx.engine.begin() as conn:
        return await mailbox_store.claim_lease(
            conn, mailbox_id, owner, _lease(ctx), now=ctx.lease_clock()
        )


async def claim_due_syncs(ctx: Context, *, owner: str, limit: int) -> list[int]:
    """Take the sync lease of up to `limit` mailboxes whose sync is due now."""
    async with ctx.engine.begin() as conn:
        return await mailbox_store.claim_due_syncs(
            conn, owner, ctx.clock(), _lease(ctx), limit, real=ctx.lease_clock()
        )


async def claim_unwatched(
    ctx: Context, *, owner: str, limit: int, skip: Collection[int]
) -> list[int]:
    """Take the watch lease of up to `limit` watchable mailboxes nobody watches, but `skip`."""
    async with ctx.engine.begin() as conn:
        return await mailbox_store.claim_unwatched(
            conn, owner, ctx.clock(), _lease(ctx), limit, skip=skip
        )


async def release_all(ctx: Context, *, owner: str) -> int:
    """A stopping worker's last act: give up every lease it holds and its presence row, so
    nothing waits for them to run out. Returns how many leases were given up."""
    async with ctx.engine.begin() as conn:
        released = await mailbox_store.release_all(conn, owner)
        await worker_store.forget(conn, owner)
    return released


async def forget_stale_workers(ctx: Context, *, owner: str) -> None:
    """At start: `owner`'s own row from an earlier run, and rows of workers long gone."""
    async with ctx.engine.begin() as conn:
        await worker_store.forget(conn, owner, older_than=ctx.clock() - PRESENCE_KEPT)


async def watch_census(ctx: Context, *, owner: str, alive_within: timedelta) -> WatchCensus:
    """Say `owner` is alive now, then count the live workers and the watchable mailboxes:
    what a worker's share of the watches is made from."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        await worker_store.heartbeat(conn, owner, now)
    async with reading(ctx.engine) as conn:
        alive = await worker_store.count_alive(conn, now, alive_within)
        watchable = await mailbox_store.count_watchable(conn)
    return WatchCensus(alive=alive, watchable=watchable)
