"""Deliveries to a real consumer on loopback, on SQLite and PostgreSQL, with a moved clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.services import accounts, metrics, webhooks
from app.services.context import Context
from app.storage import outbox
from app.webhooks.deliver import Dispatcher, Sender, wake_on_commit
from app.webhooks.schedule import MAX_ATTEMPTS
from app.webhooks.transport import PinnedTransport
from app.webhooks.urlguard import UrlGuard
from tests.support.metrics import samples, value
from tests.support.webhook_consumer import Answer, Received, WebhookConsumer

pytestmark = pytest.mark.integration


class FakeClock:
    """Real time plus jumps. Events are stamped with real time, so it never runs behind them."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta

    def jump_to(self, when: datetime) -> None:
        self.offset = max(self.offset, when - datetime.now(UTC))


@pytest.fixture
def clock(ctx: Context) -> FakeClock:
    fake = FakeClock()
    ctx.clock = fake
    return fake


@pytest.fixture
async def dispatcher(ctx: Context, clock: FakeClock) -> AsyncIterator[Dispatcher]:
    d = webhooks.make_dispatcher(ctx, owner="test-worker")
    yield d
    await d.aclose()


@pytest.fixture
def consumer() -> Any:
    with WebhookConsumer() as c:
        yield c


async def subscribe(
    ctx: Context, consumer: WebhookConsumer, *, path: str = "/hook", email: str = "rep@x.example"
) -> tuple[int, int]:
    user_id = await accounts.create_user(ctx, email=email, password="pw-123456789")
    webhook_id, secret = await webhooks.create_webhook(
        ctx, user_id=user_id, url=consumer.url + path, event_types=None
    )
    consumer.secret = secret
    return user_id, webhook_id


async def emit(ctx: Context, user_id: int, count: int, type: str = "thread.quiet") -> list[str]:
    """Events as the rules write them; returns their webhook-ids."""
    ids = []
    async with ctx.engine.begin() as conn:
        for n in range(count):
            event_id = await outbox.enqueue(
                conn,
                user_id=user_id,
                type=type,
                payload={"schema_version": 1, "n": n},
                now=ctx.clock(),
            )
            ids.append(f"evt_{event_id}")
    return ids


async def drain(d: Dispatcher) -> int:
    total = 0
    while n := await d.run_once():
        total += n
    return total


def answer(status: int, text: str = "", headers: dict[str, str] | None = None) -> Answer:
    return status, headers or {}, text.encode()


async def test_a_consumer_down_for_a_while_gets_every_event(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id, webhook_id = await subscribe(ctx, consumer)
    consumer.respond = lambda _r: answer(500, "down for maintenance")
    before = samples(await metrics.exposition(ctx.engine, clock()))
    backlog = await emit(ctx, user_id, 10)

    # Three rounds of the schedule fail: 5 s, then 5 min, then 30 min (+ jitter) later.
    for wait in (timedelta(0), timedelta(seconds=7), timedelta(minutes=7)):
        clock.advance(wait)
        assert await drain(dispatcher) == 10
    assert len(consumer.received) == 30
    assert await dispatcher.run_once() == 0  # the next round is half an hour away
    webhook = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    assert webhook.failing_since is not None
    # What the operator's dashboard shows meanwhile: every attempt failed, ten waiting.
    during = samples(await metrics.exposition(ctx.engine, clock()))
    tried = "radiosilence_webhook_attempts_total"
    assert value(during, tried, verdict="failed") - value(before, tried, verdict="failed") == 30
    assert value(during, "radiosilence_webhook_deliveries", status="pending") == 10
    assert value(during, "radiosilence_webhook_oldest_pending_seconds") >= 7 * 60

    # The consumer is back; a new event gets through and pulls the backlog forward at once.
    consumer.respond = lambda _r: answer(200, "thanks")
    fresh = await emit(ctx, user_id, 1)
    assert await drain(dispatcher) == 11

    assert consumer.verified_ids() == set(backlog + fresh)
    assert all(r.verified for r in consumer.received)
    deliveries = await webhooks.list_deliveries(ctx, user_id=user_id, webhook_id=webhook_id)
    assert {d.status for d in deliveries} == {"succeeded"}
    first = next(d for d in deliveries if d.message_id == backlog[0])
    _row, attempts = await webhooks.get_delivery(ctx, user_id=user_id, delivery_id=first.id)
    assert [a.status_code for a in attempts] == [500, 500, 500, 200]
    assert attempts[0].response_start == "down for maintenance"
    assert attempts[-1].response_start == "thanks"
    assert all(a.latency_ms >= 0 and a.verdict for a in attempts)
    webhook = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    assert webhook.failing_since is None and webhook.enabled
    after = samples(await metrics.exposition(ctx.engine, clock()))
    ok = value(after, tried, verdict="succeeded") - value(before, tried, verdict="succeeded")
    assert ok == 11
    assert value(after, "radiosilence_webhook_deliveries", status="pending") == 0
    assert value(after, "radiosilence_webhook_oldest_pending_seconds") == 0
    seconds = "radiosilence_webhook_attempt_seconds_count"
    assert value(after, seconds) - value(before, seconds) == 41


async def test_after_about_three_days_a_delivery_is_dead_lettered_then_retried_by_hand(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id, webhook_id = await subscribe(ctx, consumer)
    consumer.respond = lambda _r: answer(503, "no")
    (msg_id,) = await emit(ctx, user_id, 1)
    started = clock()

    for _ in range(MAX_ATTEMPTS):
        assert await dispatcher.run_once() == 1
        (delivery,) = await webhooks.list_deliveries(ctx, user_id=user_id, webhook_id=webhook_id)
        if delivery.next_attempt_at:  # jump to the next try of the schedule
            clock.jump_to(delivery.next_attempt_at)
    assert await dispatcher.run_once() == 0

    (dead,) = await webhooks.list_deliveries(
        ctx, user_id=user_id, webhook_id=webhook_id, status="dead"
    )
    assert dead.attempts == MAX_ATTEMPTS and dead.last_status_code == 503
    assert timedelta(days=2) < dead.completed_at - started < timedelta(days=7)
    assert len(consumer.received) == MAX_ATTEMPTS

    consumer.respond = lambda _r: answer(204)
    await webhooks.retry_delivery(ctx, user_id=user_id, delivery_id=dead.id)
    assert await dispatcher.run_once() == 1
    row, attempts = await webhooks.get_delivery(ctx, user_id=user_id, delivery_id=dead.id)
    assert row.status == "succeeded" and row.attempts == 1
    assert len(attempts) == MAX_ATTEMPTS + 1  # the log keeps the history
    assert [r.msg_id for r in consumer.received] == [msg_id] * (MAX_ATTEMPTS + 1)


async def test_410_disables_the_endpoint_and_tells_the_owner(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    def by_path(request: Received) -> Answer:
        return answer(410, "gone") if request.path == "/gone" else answer(200)

    consumer.respond = by_path
    user_id, gone_id = await subscribe(ctx, consumer, path="/gone")
    secret = consumer.secret
    watcher_id, watcher_secret = await webhooks.create_webhook(
        ctx,
        user_id=user_id,
        url=consumer.url + "/watch",
        event_types=["webhook.disabled"],
        description="ops channel",
    )
    await emit(ctx, user_id, 2)

    assert await dispatcher.run_once() == 2  # both to /gone: the first 410 disables it
    consumer.secret = watcher_secret
    assert await dispatcher.run_once() == 1  # webhook.disabled to the watcher
    assert await dispatcher.run_once() == 0

    gone = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=gone_id)
    assert not gone.enabled and "410" in gone.disabled_reason
    told = consumer.received[-1]
    assert told.path == "/watch" and told.verified
    assert told.json["type"] == "webhook.disabled"
    assert told.json["data"]["webhook"]["id"] == gone_id
    assert secret and secret not in told.body.decode()
    # Later events are not queued for a disabled endpoint; enabling it brings it back.
    await emit(ctx, user_id, 1)
    assert await dispatcher.run_once() == 0
    await webhooks.enable_webhook(ctx, user_id=user_id, webhook_id=gone_id)
    assert len(await emit(ctx, user_id, 1)) == 1
    assert await dispatcher.run_once() == 1
    assert watcher_id != gone_id


async def test_an_endpoint_failing_for_five_days_is_disabled(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id, webhook_id = await subscribe(ctx, consumer)
    consumer.respond = lambda _r: answer(500, "still broken")
    await emit(ctx, user_id, 1)
    await drain(dispatcher)
    first_failure = (
        await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    ).failing_since
    assert first_failure is not None

    # A new event every day, and every retry that falls due, fails; four days are not enough.
    for _ in range(4):
        clock.advance(timedelta(days=1))
        await emit(ctx, user_id, 1)
        assert await drain(dispatcher) >= 1
        webhook = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
        assert webhook.enabled and webhook.failing_since == first_failure

    clock.advance(timedelta(days=1, minutes=1))
    await emit(ctx, user_id, 1)
    await drain(dispatcher)
    webhook = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    assert not webhook.enabled
    assert webhook.disabled_reason == "every attempt failed for 5 days"
    tried = len(consumer.received)
    await emit(ctx, user_id, 1)  # nothing more is sent to it
    assert await drain(dispatcher) == 0 and len(consumer.received) == tried


async def test_a_redirect_is_a_failure_and_is_not_followed(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    consumer.respond = lambda r: (
        answer(302, "", {"Location": consumer.url + "/elsewhere"})
        if r.path == "/hook"
        else answer(200)
    )
    user_id, webhook_id = await subscribe(ctx, consumer)
    await emit(ctx, user_id, 1)
    assert await dispatcher.run_once() == 1
    assert [r.path for r in consumer.received] == ["/hook"]
    (delivery,) = await webhooks.list_deliveries(ctx, user_id=user_id, webhook_id=webhook_id)
    assert delivery.status == "pending" and delivery.last_status_code == 302


async def test_throttled_consumers_are_given_the_time_they_ask_for(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    consumer.respond = lambda _r: answer(429, "slow down", {"Retry-After": "3600"})
    user_id, webhook_id = await subscribe(ctx, consumer)
    await emit(ctx, user_id, 1)
    assert await dispatcher.run_once() == 1
    (delivery,) = await webhooks.list_deliveries(ctx, user_id=user_id, webhook_id=webhook_id)
    assert delivery.next_attempt_at - delivery.last_attempt_at == timedelta(hours=1)


async def test_stale_timestamps_are_rejected_by_the_verifier(
    ctx: Context, clock: FakeClock, consumer: WebhookConsumer
) -> None:
    user_id, webhook_id = await subscribe(ctx, consumer)
    await emit(ctx, user_id, 1)
    skewed = Dispatcher(
        engine=ctx.engine,
        box=ctx.box,
        sender=Sender(
            PinnedTransport(UrlGuard(allow_private=True)), wall_clock=lambda: time.time() - 600
        ),
        owner="skewed",
        clock=clock,
    )
    try:
        assert await skewed.run_once() == 1
    finally:
        await skewed.aclose()
    (request,) = consumer.received
    assert not request.verified and request.error == "Message timestamp too old"
    (delivery,) = await webhooks.list_deliveries(ctx, user_id=user_id, webhook_id=webhook_id)
    _row, (attempt,) = await webhooks.get_delivery(ctx, user_id=user_id, delivery_id=delivery.id)
    assert attempt.status_code == 400 and "too old" in attempt.response_start
    # A captured request replayed later fails the same way, whatever its signature.
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(consumer.secret or "").verify(request.body, request.headers)


async def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id, webhook_id = await subscribe(ctx, consumer)
    old = consumer.secret or ""
    new, expires = await webhooks.rotate_secret(
        ctx, user_id=user_id, webhook_id=webhook_id, overlap=timedelta(hours=1)
    )
    assert expires is not None and new != old
    assert timedelta(minutes=59) < expires - clock() <= timedelta(hours=1)
    await emit(ctx, user_id, 1)
    assert await dispatcher.run_once() == 1
    during = consumer.received[-1]
    assert during.verified and len(during.signature.split(" ")) == 2
    Webhook(new).verify(during.body, during.headers)  # the consumer may switch at any time

    clock.advance(timedelta(hours=2))
    consumer.secret = new
    await emit(ctx, user_id, 1)
    assert await dispatcher.run_once() == 1
    after = consumer.received[-1]
    assert after.verified and len(after.signature.split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.body, after.headers)


async def test_event_types_filter_and_test_pings(
    ctx: Context, clock: FakeClock, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id = await accounts.create_user(ctx, email="rep@x.example", password="pw-123456789")
    webhook_id, consumer.secret = await webhooks.create_webhook(
        ctx, user_id=user_id, url=consumer.url, event_types=["thread.replied"]
    )
    await emit(ctx, user_id, 2, type="thread.quiet")
    (wanted,) = await emit(ctx, user_id, 1, type="thread.replied")
    ping = await webhooks.send_test(ctx, user_id=user_id, webhook_id=webhook_id)
    assert await drain(dispatcher) == 2
    assert consumer.verified_ids() == {wanted, ping.message_id}
    types = sorted(r.json["type"] for r in consumer.received)
    assert types == ["thread.replied", "webhook.test"]


async def test_only_a_commit_that_queued_deliveries_wakes_the_dispatcher(
    ctx: Context, dispatcher: Dispatcher, consumer: WebhookConsumer
) -> None:
    user_id, _ = await subscribe(ctx, consumer)
    loner = await accounts.create_user(ctx, email="loner@x.example", password="pw-123456789")
    stop_listening = wake_on_commit(ctx.engine, dispatcher.wake.set)
    try:
        with pytest.raises(RuntimeError):
            async with ctx.engine.begin() as conn:
                await outbox.enqueue(
                    conn, user_id=user_id, type="thread.quiet", payload={}, now=ctx.clock()
                )
                raise RuntimeError("rolled back")
        await emit(ctx, loner, 1)  # nobody subscribed: nothing queued
        assert not dispatcher.wake.is_set()
        await emit(ctx, user_id, 1)
        assert dispatcher.wake.is_set()
    finally:
        stop_listening()
    dispatcher.wake.clear()
    await emit(ctx, user_id, 1)
    assert not dispatcher.wake.is_set()
