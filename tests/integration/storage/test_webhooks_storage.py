"""The outbox fan-out and the delivery lease, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.services import accounts, webhooks
from app.services.context import Context
from app.storage import outbox
from app.storage import webhooks as store
from app.storage.tables import events, webhook_deliveries

pytestmark = pytest.mark.integration
LEASE = timedelta(seconds=60)


async def make_user(ctx: Context, email: str) -> int:
    return await accounts.create_user(ctx, email=email, password="pw-123456789")


async def count_deliveries(ctx: Context) -> int:
    async with ctx.engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(webhook_deliveries))).scalar_one()
        )


async def test_events_fan_out_to_matching_enabled_subscriptions_of_their_user(
    ctx: Context,
) -> None:
    rep, other = await make_user(ctx, "rep@x.example"), await make_user(ctx, "o@x.example")
    everything, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/a", event_types=None
    )
    replies, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/b", event_types=["thread.replied"]
    )
    off, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/c", event_types=None
    )
    await webhooks.create_webhook(ctx, user_id=other, url="http://127.0.0.1:9/d", event_types=None)
    async with ctx.engine.begin() as conn:
        await store.disable_subscription(conn, off, "by hand", datetime.now(UTC))
        quiet = await outbox.enqueue(
            conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock()
        )
        replied = await outbox.enqueue(
            conn, user_id=rep, type="thread.replied", payload={}, now=ctx.clock()
        )

    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    webhook_deliveries.c.event_id,
                    webhook_deliveries.c.subscription_id,
                    webhook_deliveries.c.message_id,
                )
            )
        ).all()
    assert sorted(rows) == sorted(
        [
            (quiet, everything, f"evt_{quiet}"),
            (replied, everything, f"evt_{replied}"),
            (replied, replies, f"evt_{replied}"),
        ]
    )


async def test_an_event_and_its_deliveries_commit_or_roll_back_together(ctx: Context) -> None:
    rep = await make_user(ctx, "rep@x.example")
    await webhooks.create_webhook(ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None)

    with pytest.raises(RuntimeError):
        async with ctx.engine.begin() as conn:
            await outbox.enqueue(
                conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock()
            )
            raise RuntimeError("the state change failed after its event was written")

    async with ctx.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(events))).scalar_one() == 0
    assert await count_deliveries(ctx) == 0


async def queue(ctx: Context, count: int) -> list[int]:
    rep = await make_user(ctx, "rep@x.example")
    await webhooks.create_webhook(ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None)
    async with ctx.engine.begin() as conn:
        for _ in range(count):
            await outbox.enqueue(
                conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock()
            )
        rows = await conn.execute(select(webhook_deliveries.c.id))
        return sorted(int(i) for i in rows.scalars())


async def test_concurrent_claimers_never_share_a_delivery(ctx: Context) -> None:
    queued = await queue(ctx, 60)
    now = datetime.now(UTC) + timedelta(seconds=1)

    async def claim(owner: str) -> list[int]:
        async with ctx.engine.begin() as conn:
            return await store.claim_due(conn, owner=owner, now=now, lease=LEASE, limit=25)

    claims = await asyncio.gather(*(claim(f"worker-{n}") for n in range(4)))
    taken = [i for c in claims for i in c]
    assert len(taken) == len(set(taken))  # nobody got a delivery twice
    assert sorted(taken) == queued[: len(taken)] and len(taken) == 60
    async with ctx.engine.begin() as conn:
        assert await store.claim_due(conn, owner="late", now=now, lease=LEASE, limit=25) == []


async def test_a_dead_workers_lease_runs_out_and_its_deliveries_come_back(ctx: Context) -> None:
    queued = await queue(ctx, 3)
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with ctx.engine.begin() as conn:
        assert await store.claim_due(conn, owner="dead", now=now, lease=LEASE, limit=10) == queued
        assert not await store.has_due(conn, now + LEASE / 2)
        assert (
            await store.claim_due(conn, owner="b", now=now + LEASE / 2, lease=LEASE, limit=10) == []
        )
        assert await store.has_due(conn, now + LEASE * 2)
        later = await store.claim_due(conn, owner="b", now=now + LEASE * 2, lease=LEASE, limit=10)
    assert later == queued


async def test_a_late_settlement_does_not_overwrite_the_new_owner(ctx: Context) -> None:
    (delivery_id,) = await queue(ctx, 1)
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with ctx.engine.begin() as conn:
        await store.claim_due(conn, owner="slow", now=now, lease=LEASE, limit=1)
        await store.claim_due(conn, owner="fast", now=now + LEASE * 2, lease=LEASE, limit=1)
        row = store.Settlement(
            id=delivery_id,
            status="succeeded",
            attempts=1,
            next_attempt_at=None,
            last_attempt_at=now,
            last_status_code=200,
            last_error=None,
            completed_at=now,
        )
        await store.settle(conn, "slow", [row])
        status = (
            await conn.execute(
                select(webhook_deliveries.c.status, webhook_deliveries.c.lease_owner)
            )
        ).one()
    assert tuple(status) == ("pending", "fast")


async def test_subscriptions_changed_within_a_transaction_are_seen_by_the_fan_out(
    ctx: Context,
) -> None:
    rep = await make_user(ctx, "rep@x.example")
    first, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None
    )
    async with ctx.engine.begin() as conn:
        before = await outbox.enqueue(
            conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock()
        )
        await store.disable_subscription(conn, first, "by hand", datetime.now(UTC))
        await outbox.enqueue(conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock())
        rows = await conn.execute(select(webhook_deliveries.c.event_id))
        assert list(rows.scalars()) == [before]
