"""The walking skeleton, as a user meets it: CLI, `radiosilence serve`, HTTP API, Dovecot."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.calendars import work_calendar
from app.domain.worktime import business_days_elapsed, day_label
from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, make_user, now_utc, populate
from tests.support.metrics import samples, value
from tests.support.processes import cli_env, run_cli, serving

pytestmark = pytest.mark.integration
THREAD_FIELDS = {
    "id",
    "mailbox_id",
    "subject",
    "state",
    "reason",
    "needs_response",
    "message_ids",
    "last_outbound_at",
    "last_inbound_at",
    "next_check_at",
    "followups_sent",
}
MESSAGE_FIELDS = {"message_id", "kind", "kind_reason", "from", "date", "subject", "folder"}


def all_threads(api: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.get(
            "/api/v1/threads",
            params={**params, "limit": 2, **({"cursor": cursor} if cursor else {})},
        )
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_walking_skeleton(
    backend: str, imap_user: ImapUser, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        db_file = tmp_path / "var" / "rs.db"
        database_url = f"sqlite+aiosqlite:///{db_file}"
    else:
        database_url = request.getfixturevalue("database_url_pg")
    env = cli_env(database_url=database_url, secret_key=TEST_SECRET_KEY, log_level="DEBUG")
    written = now_utc()
    scenario = populate(imap_user, written)
    migrated = run_cli("migrate", env=env, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    token = make_user("rep@seller.example", env, tmp_path)
    other_token = make_user("someone@else.example", env, tmp_path)
    log_path = tmp_path / "serve.log"

    with (
        serving(env, tmp_path, log_path) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as api,
        httpx.Client(base_url=base, headers={"Authorization": f"Bearer {other_token}"}) as other,
    ):
        wrong = api.post(
            "/api/v1/mailboxes",
            json=imap_user.mailbox_body(
                imap={**imap_user.mailbox_body()["imap"], "password": "not-the-password"}
            ),
        )  # type: ignore[dict-item]
        assert wrong.status_code == 422, wrong.text
        assert "refused the login" in wrong.json()["detail"]
        assert "Authentication failed" in wrong.json()["detail"]  # the server's own words
        assert "not-the-password" not in wrong.text

        created = api.post("/api/v1/mailboxes", json=imap_user.mailbox_body())
        assert created.status_code == 201, created.text
        mailbox_id = created.json()["id"]

        synced = api.post(f"/api/v1/mailboxes/{mailbox_id}/sync", params={"wait": "true"})
        assert synced.status_code == 200, synced.text

        quiet = api.get("/api/v1/threads", params={"state": "quiet", "mailbox_id": mailbox_id})
        assert quiet.status_code == 200
        (thread,) = quiet.json()["items"]
        assert thread.keys() >= THREAD_FIELDS
        assert thread["message_ids"] == [scenario.quiet]
        assert thread["subject"] == "Proposal for Buyer Inc"
        # Ten days ago hold 6 to 8 whole business days (09:00–17:00 UTC, no holidays), by the
        # weekday and the hour it runs at: the reason says how many, and the e-mail's date.
        quiet_since = written - timedelta(days=10)
        years = range(quiet_since.year, written.year + 2)
        calendar = work_calendar(timezone="UTC", country=None, years=years)
        days = business_days_elapsed(quiet_since, now_utc(), calendar)
        assert 6 <= days <= 8
        assert thread["reason"].startswith(
            f"quiet for {days} business days since your e-mail of {day_label(quiet_since.date())} "
        ), thread["reason"]
        assert thread["needs_response"] is False

        by_root = {t["message_ids"][0]: t for t in all_threads(api, mailbox_id=mailbox_id)}
        assert {k: t["state"] for k, t in by_root.items()} == {
            scenario.quiet: "quiet",
            scenario.replied: "replied",
            scenario.awaiting: "awaiting_reply",
            scenario.internal: "ignored",
            scenario.paused: "paused",
        }
        replied = by_root[scenario.replied]
        assert replied["subject"] == "Pricing — Müller GmbH"
        assert replied["needs_response"] is True

        detail = api.get(f"/api/v1/threads/{replied['id']}")
        assert detail.status_code == 200
        messages = detail.json()["messages"]
        assert all(m.keys() >= MESSAGE_FIELDS for m in messages)
        assert [(m["kind"], m["folder"]) for m in messages] == [
            ("outbound", "Sent"),
            ("reply", "Clients/Acme"),
        ]

        # Another user sees none of it.
        assert other.get(f"/api/v1/mailboxes/{mailbox_id}").status_code == 404
        assert other.get(f"/api/v1/threads/{replied['id']}").status_code == 404
        assert other.post(f"/api/v1/mailboxes/{mailbox_id}/sync").status_code == 404
        assert other.get("/api/v1/threads").json() == {"items": [], "next_cursor": None}
        assert httpx.get(base + "/api/v1/threads").status_code == 401

        # What an operator's Prometheus scrapes from this server: its own work and the stored state.
        exposed = httpx.get(base + "/metrics")
        assert exposed.status_code == 200
        scraped = samples(exposed.text)
        assert value(scraped, "radiosilence_sync_messages_total") == 7  # Junk is not read
        assert value(scraped, "radiosilence_sync_passes_total", outcome="ok") >= 1
        assert value(scraped, "radiosilence_sync_passes_total", outcome="failed") == 0
        for phase in ("headers", "parse", "store", "commit"):
            assert value(scraped, "radiosilence_sync_phase_seconds_total", phase=phase) > 0, phase
        assert value(scraped, "radiosilence_sync_duration_seconds_count") >= 1
        assert value(scraped, "radiosilence_threads_evaluated_total") >= 5
        assert value(scraped, "radiosilence_mailboxes", status="ok") == 1
        assert value(scraped, "radiosilence_mailboxes", status="failed") == 0
        pending = api.get("/api/v1/drafts", params={"state": "pending"}).json()["items"]
        assert value(scraped, "radiosilence_drafts_pending") == len(pending) >= 1
        assert value(scraped, "radiosilence_drafts_created_total") == len(pending)
        assert value(scraped, "radiosilence_database_up") == 1
        assert imap_user.password not in exposed.text

        listed = api.get("/api/v1/mailboxes").json()["items"]
        assert [m["id"] for m in listed] == [mailbox_id]
        assert imap_user.password not in api.get("/api/v1/mailboxes").text
        assert api.get("/docs").status_code == 200
        assert "/api/v1/threads" in api.get("/openapi.json").json()["paths"]

    assert imap_user.password not in log_path.read_text()
    if backend == "sqlite":
        assert imap_user.password.encode() not in db_file.read_bytes()
