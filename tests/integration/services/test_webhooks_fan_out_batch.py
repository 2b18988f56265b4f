"""One fan-out per batch of events, and the owner's actions checked and done in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from app.errors import Conflict, NotFound
from app.services import accounts, webhooks
from app.services.context import Context
from app.storage import outbox
from app.storage import webhooks as store
from app.storage.outbox import NewEvent
from app.storage.tables import webhook_deliveries, webhook_subscriptions

pytestmark = pytest.mark.integration


async def make_user(ctx: Context, email: str) -> int:
    return await accounts.create_user(ctx, email=email, password="pw-123456789")


@contextmanager
def statements(ctx: Context) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()).lower())

    event.listen(ctx.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", record)


async def test_a_batch_of_events_is_fanned_out_with_one_select_and_one_insert(
    ctx: Context,
) -> None:
    rep, other, idle = (
        await make_user(ctx, "rep@x.example"),
        await make_user(ctx, "other@x.example"),
        await make_user(ctx, "idle@x.example"),
    )
    every, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/a", event_types=None
    )
    replies, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/b", event_types=["thread.replied"]
    )
    theirs, _ = await webhooks.create_webhook(
        ctx, user_id=other, url="http://127.0.0.1:9/c", event_types=["thread.quiet"]
    )
    off, _ = await webhooks.create_webhook(
        ctx, user_id=other, url="http://127.0.0.1:9/d", event_types=None
    )
    async with ctx.engine.begin() as conn:
        await store.disable_subscription(conn, off, "by hand", datetime.now(UTC))

    items = [
        NewEvent(user_id=rep, type="thread.quiet", payload={}),
        NewEvent(user_id=rep, type="thread.replied", payload={}),
        NewEvent(user_id=other, type="thread.quiet", payload={}),
        NewEvent(user_id=other, type="thread.replied", payload={}),
        NewEvent(user_id=idle, type="thread.quiet", payload={}),
    ]
    with statements(ctx) as seen:
        async with ctx.engine.begin() as conn:
            ids = await outbox.enqueue_many(conn, items, now=ctx.clock())
    reads = [s for s in seen if s.startswith("select") and "webhook_subscriptions" in s]
    writes = [s for s in seen if s.startswith("insert into webhook_deliveries")]
    assert len(reads) == 1 and len(writes) == 1

    async with ctx.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(
                    webhook_deliveries.c.event_id,
                    webhook_deliveries.c.subscription_id,
                    webhook_deliveries.c.message_id,
                    webhook_deliveries.c.event_type,
                )
            )
        ).all()
    quiet, replied, other_quiet, _other_replied, _idle = ids
    assert sorted(tuple(r) for r in rows) == sorted(
        [
            (quiet, every, f"evt_{quiet}", "thread.quiet"),
            (replied, every, f"evt_{replied}", "thread.replied"),
            (replied, replies, f"evt_{replied}", "thread.replied"),
            (other_quiet, theirs, f"evt_{other_quiet}", "thread.quiet"),
        ]
    )


async def test_events_nobody_subscribed_to_queue_nothing(ctx: Context) -> None:
    rep = await make_user(ctx, "rep@x.example")
    async with ctx.engine.begin() as conn:
        assert await store.fan_out(conn, []) == 0
        await outbox.enqueue(conn, user_id=rep, type="thread.quiet", payload={}, now=ctx.clock())
        assert store.QUEUED_MARK not in conn.info
    async with ctx.engine.connect() as conn:
        assert (await conn.execute(select(webhook_deliveries.c.id))).first() is None


async def test_another_users_webhook_is_not_found_and_left_alone(ctx: Context) -> None:
    rep, other = await make_user(ctx, "rep@x.example"), await make_user(ctx, "o@x.example")
    webhook_id, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None
    )
    ping = await webhooks.send_test(ctx, user_id=rep, webhook_id=webhook_id)
    before = await webhooks.get_webhook(ctx, user_id=rep, webhook_id=webhook_id)

    message = f"no webhook {webhook_id}"
    with pytest.raises(NotFound, match=f"^{message}$"):
        await webhooks.delete_webhook(ctx, user_id=other, webhook_id=webhook_id)
    with pytest.raises(NotFound, match=f"^{message}$"):
        await webhooks.enable_webhook(ctx, user_id=other, webhook_id=webhook_id)
    with pytest.raises(NotFound, match=f"^{message}$"):
        await webhooks.rotate_secret(ctx, user_id=other, webhook_id=webhook_id)
    with pytest.raises(NotFound, match=f"^{message}$"):
        await webhooks.send_test(ctx, user_id=other, webhook_id=webhook_id)
    with pytest.raises(NotFound, match=f"^{message}$"):
        await webhooks.list_deliveries(ctx, user_id=other, webhook_id=webhook_id)
    with pytest.raises(NotFound, match=f"^no webhook delivery {ping.id}$"):
        await webhooks.retry_delivery(ctx, user_id=other, delivery_id=ping.id)

    assert await webhooks.get_webhook(ctx, user_id=rep, webhook_id=webhook_id) == before
    listed = await webhooks.list_deliveries(ctx, user_id=rep, webhook_id=webhook_id)
    assert [d.id for d in listed] == [ping.id]


async def test_rotation_keeps_the_secret_it_replaces_only_for_an_overlap(ctx: Context) -> None:
    rep = await make_user(ctx, "rep@x.example")
    webhook_id, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None
    )
    first = await webhooks.get_webhook(ctx, user_id=rep, webhook_id=webhook_id)
    new, expires = await webhooks.rotate_secret(
        ctx, user_id=rep, webhook_id=webhook_id, overlap=timedelta(hours=1)
    )
    rotated = await webhooks.get_webhook(ctx, user_id=rep, webhook_id=webhook_id)
    assert rotated.previous_secret_enc == first.secret_enc
    assert rotated.previous_secret_expires_at == expires
    assert ctx.box.decrypt(rotated.secret_enc) == new

    _, none = await webhooks.rotate_secret(
        ctx, user_id=rep, webhook_id=webhook_id, overlap=timedelta(0)
    )
    assert none is None
    again = await webhooks.get_webhook(ctx, user_id=rep, webhook_id=webhook_id)
    assert again.previous_secret_enc is None and again.previous_secret_expires_at is None


async def test_a_retry_refused_for_a_disabled_endpoint_leaves_the_delivery_dead(
    ctx: Context,
) -> None:
    rep = await make_user(ctx, "rep@x.example")
    webhook_id, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None
    )
    ping = await webhooks.send_test(ctx, user_id=rep, webhook_id=webhook_id)
    assert ping.status == "pending" and ping.subscription_id == webhook_id
    async with ctx.engine.begin() as conn:
        await store.disable_subscription(conn, webhook_id, "by hand", datetime.now(UTC))

    with pytest.raises(Conflict, match=rf"webhook {webhook_id} is disabled \(by hand\)"):
        await webhooks.retry_delivery(ctx, user_id=rep, delivery_id=ping.id)
    row, _attempts = await webhooks.get_delivery(ctx, user_id=rep, delivery_id=ping.id)
    assert row.status == "dead"

    enabled = await webhooks.enable_webhook(ctx, user_id=rep, webhook_id=webhook_id)
    assert enabled.enabled is True and enabled.disabled_reason == ""
    retried = await webhooks.retry_delivery(ctx, user_id=rep, delivery_id=ping.id)
    assert retried.status == "pending" and retried.attempts == 0
    assert retried.completed_at is None


async def test_deleting_a_webhook_deletes_it(ctx: Context) -> None:
    rep = await make_user(ctx, "rep@x.example")
    webhook_id, _ = await webhooks.create_webhook(
        ctx, user_id=rep, url="http://127.0.0.1:9/", event_types=None
    )
    await webhooks.delete_webhook(ctx, user_id=rep, webhook_id=webhook_id)
    async with ctx.engine.connect() as conn:
        assert (await conn.execute(select(webhook_subscriptions.c.id))).first() is None
    with pytest.raises(NotFound):
        await webhooks.delete_webhook(ctx, user_id=rep, webhook_id=webhook_id)
