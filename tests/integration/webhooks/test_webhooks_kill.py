"""A real `radiosilence worker` killed with SIGKILL mid-delivery loses nothing."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import select

from app.services import accounts, webhooks
from app.services.context import Context
from app.storage import outbox
from app.storage.tables import webhook_deliveries
from tests.conftest import TEST_SECRET_KEY
from tests.support.processes import cli_env, start_worker, wait_for
from tests.support.webhook_consumer import WebhookConsumer

pytestmark = pytest.mark.integration
EVENTS = 300


async def test_a_worker_killed_mid_delivery_loses_nothing(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    user_id = await accounts.create_user(ctx, email="rep@x.example", password="pw-123456789")
    log = tmp_path / "worker.log"
    env = cli_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        webhook_allow_private="true",
        webhook_lease_seconds="2",
        log_level="INFO",
    )
    with WebhookConsumer(delay=0.02) as consumer:
        webhook_id, consumer.secret = await webhooks.create_webhook(
            ctx, user_id=user_id, url=consumer.url + "/in", event_types=None
        )
        expected = set()
        async with ctx.engine.begin() as conn:
            for n in range(EVENTS):
                event_id = await outbox.enqueue(
                    conn, user_id=user_id, type="thread.quiet", payload={"n": n}, now=ctx.clock()
                )
                expected.add(f"evt_{event_id}")

        first = start_worker(env, tmp_path, log)
        try:
            await wait_for(
                lambda: len(consumer.received) >= 40 and consumer.in_flight > 0,
                "the worker is mid-delivery",
                log,
                timeout=60,
            )
            first.kill()  # SIGKILL: no drain, no lease released
        finally:
            first.kill()
            first.wait(timeout=10)
        assert first.returncode == -9
        before_restart = len(consumer.received)
        assert before_restart < EVENTS

        second = start_worker(env, tmp_path, log)
        try:
            await wait_for(
                lambda: consumer.verified_ids() >= expected,
                "every event has arrived",
                log,
                timeout=90,
            )
            await wait_for(lambda: consumer.in_flight == 0, "the consumer is idle", log, 10)
            second.terminate()  # SIGTERM: a graceful stop
            assert second.wait(timeout=30) == 0, log.read_text()[-4000:]
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()

    assert all(r.verified for r in consumer.received)
    assert consumer.verified_ids() == expected
    bodies: dict[str, set[bytes]] = defaultdict(set)
    counts: dict[str, int] = defaultdict(int)
    for request in consumer.received:
        bodies[request.msg_id].add(request.body)
        counts[request.msg_id] += 1
    duplicates = {i for i, c in counts.items() if c > 1}
    # The requests in flight at the kill were received but never recorded: sent again, with
    # the same webhook-id and the same body, so the consumer can tell.
    assert duplicates, "the kill should have caught deliveries in flight"
    assert all(len(b) == 1 for b in bodies.values())
    async with ctx.engine.connect() as conn:
        statuses = (
            await conn.execute(
                select(webhook_deliveries.c.status).where(
                    webhook_deliveries.c.subscription_id == webhook_id
                )
            )
        ).scalars()
        assert set(statuses) == {"succeeded"}
    assert "webhooks.attempt" in log.read_text()
    assert "Traceback" not in log.read_text()
    assert (consumer.secret or "x")[6:] not in log.read_text()
