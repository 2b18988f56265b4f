"""A `radiosilence worker` serves its own Prometheus metrics on RADIOSILENCE_METRICS_PORT."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from app.services import accounts, webhooks
from app.services.context import Context
from app.storage import outbox
from tests.conftest import TEST_SECRET_KEY
from tests.support.metrics import samples, value
from tests.support.processes import cli_env, free_port, run_cli, start_worker, wait_for
from tests.support.webhook_consumer import WebhookConsumer

pytestmark = pytest.mark.integration


async def test_a_worker_exposes_what_it_did_and_not_the_stored_state(
    ctx: Context, database_url: str, tmp_path: Path
) -> None:
    user_id = await accounts.create_user(ctx, email="rep@x.example", password="pw-123456789")
    port = free_port()
    log = tmp_path / "worker.log"
    env = cli_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        webhook_allow_private="true",
        metrics_port=str(port),
    )
    with WebhookConsumer() as consumer:
        _webhook_id, consumer.secret = await webhooks.create_webhook(
            ctx, user_id=user_id, url=consumer.url + "/in", event_types=None
        )
        async with ctx.engine.begin() as conn:
            for n in range(5):
                await outbox.enqueue(
                    conn, user_id=user_id, type="thread.quiet", payload={"n": n}, now=ctx.clock()
                )
        worker = start_worker(env, tmp_path, log)
        try:
            await wait_for(lambda: len(consumer.verified_ids()) == 5, "all arrived", log, 60)
            scraped = samples(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
            worker.terminate()
            assert worker.wait(timeout=30) == 0, log.read_text()[-4000:]
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    tried = "radiosilence_webhook_attempts_total"
    assert value(scraped, tried, verdict="succeeded") == 5
    assert value(scraped, tried, verdict="failed") == 0
    assert value(scraped, "radiosilence_webhook_attempt_seconds_count") == 5
    assert value(scraped, "process_resident_memory_bytes") > 0
    # Stored-state gauges come from `serve` only: a worker never reports them as zeros.
    assert not any(name.startswith("radiosilence_mailboxes") for name, _ in scraped)
    assert f"metrics.serving at=127.0.0.1:{port}" in log.read_text()


def test_a_metrics_port_in_use_is_one_clear_error(database_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = cli_env(database_url=database_url, secret_key=TEST_SECRET_KEY, metrics_port=str(port))
        done = run_cli("worker", env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert f"RADIOSILENCE_METRICS_PORT={port}: cannot listen on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr
