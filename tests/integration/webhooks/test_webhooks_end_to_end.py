"""As an integrator meets it: `radiosilence serve`, a mailbox on Dovecot, a signed thread.quiet."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, make_user, now_utc, populate
from tests.support.processes import cli_env, run_cli, serving
from tests.support.webhook_consumer import WebhookConsumer

pytestmark = pytest.mark.integration


def test_a_quiet_thread_reaches_the_consumer_signed(imap_user: ImapUser, tmp_path: Path) -> None:
    env = cli_env(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'rs.db'}",
        secret_key=TEST_SECRET_KEY,
        webhook_allow_private="true",
        log_level="DEBUG",
    )
    scenario = populate(imap_user, now_utc())
    assert run_cli("migrate", env=env, cwd=tmp_path).returncode == 0
    token = make_user("rep@seller.example", env, tmp_path)
    log_path = tmp_path / "serve.log"

    with (
        WebhookConsumer() as consumer,
        serving(env, tmp_path, log_path) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api,
    ):
        created = api.post(
            "/api/v1/webhooks",
            json={
                "url": consumer.url + "/rs",
                "event_types": ["thread.quiet"],  # not the draft.created that follows it
                "description": "CRM",
            },
        )
        assert created.status_code == 201, created.text
        consumer.secret = created.json()["secret"]
        mailbox = api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())
        assert mailbox.status_code == 201, mailbox.text
        synced = api.post(f"/api/v1/mailboxes/{mailbox.json()['id']}/sync?wait=true")
        assert synced.status_code == 200, synced.text

        deadline = time.monotonic() + 30
        while not consumer.received and time.monotonic() < deadline:
            time.sleep(0.05)
        (request,) = consumer.received
        assert request.verified, request.error
        assert request.json["type"] == "thread.quiet"
        assert request.json["data"]["thread"]["message_ids"] == [scenario.quiet]
        event, _draft_created = api.get("/api/v1/events").json()["items"]
        assert request.msg_id == f"evt_{event['id']}"
        assert request.json == {k: event[k] for k in ("type", "timestamp", "data")}

        webhook_id = created.json()["id"]
        deliveries = api.get(f"/api/v1/webhooks/{webhook_id}/deliveries").json()["items"]
        assert [d["status"] for d in deliveries] == ["succeeded"]
        detail = api.get(f"/api/v1/webhooks/deliveries/{deliveries[0]['id']}").json()
        assert [a["status_code"] for a in detail["attempt_log"]] == [200]
        assert consumer.secret not in api.get("/api/v1/webhooks").text

    log = log_path.read_text()
    assert "webhooks.attempt" in log
    assert consumer.secret[6:] not in log
