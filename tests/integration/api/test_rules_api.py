"""Rules per mailbox and the rep's thread actions over HTTP (in process), on SQLite and
PostgreSQL: validation, preview, scoping, time off, and the events each change emits."""

from __future__ import annotations

import mailbox
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.services import imports
from app.services.backtest import backtest_mailbox
from app.services.context import Context
from app.services.evaluation import evaluate_mailbox
from tests.factories import PROSPECT, REP, make_message
from tests.support.api import api_client

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # Mon 10:00 UTC
OWNER = "owner@seller.example"


@dataclass
class Setup:
    api: httpx.AsyncClient
    other: httpx.AsyncClient
    mailbox_id: int
    threads: dict[str, int]  # subject -> id


def write_mail(path: Path) -> None:
    """Three conversations: quiet (10 days), replied and owed an answer, just written."""
    box = mailbox.mbox(path, create=True)
    old = NOW - timedelta(days=10)  # Fri 13 Nov
    for raw in [
        make_message(from_=REP, to=[PROSPECT], subject="Proposal", date=old, message_id="q1@s"),
        make_message(from_=REP, to=[PROSPECT], subject="Pricing", date=old, message_id="r1@s"),
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Pricing",
            date=old + timedelta(days=1, hours=1),
            message_id="r2@b",
            references=["r1@s"],
        ),
        make_message(
            from_=REP,
            to=[PROSPECT],
            subject="Next steps",
            date=NOW - timedelta(hours=1),
            message_id="a1@s",
        ),
    ]:
        box.add(raw)
    box.flush()
    box.close()


@pytest.fixture
async def setup(ctx: Context, tmp_path: Path) -> AsyncIterator[Setup]:
    ctx.clock = lambda: NOW
    async with (
        await api_client(ctx, OWNER) as api,
        await api_client(ctx, "someone@else.example") as other,
    ):
        write_mail(tmp_path / "mail.mbox")
        outcome = await imports.import_mail(
            ctx, tmp_path / "mail.mbox", email=OWNER, mailbox_name="Work", addresses=[REP]
        )
        listed = (await api.get("/api/v1/threads", params={"limit": 50})).json()["items"]
        threads = {t["subject"]: t["id"] for t in listed}
        assert set(threads) == {"Proposal", "Pricing", "Next steps"}, listed
        yield Setup(api=api, other=other, mailbox_id=outcome.mailbox_id, threads=threads)


async def thread(api: httpx.AsyncClient, thread_id: int) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/threads/{thread_id}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def events(api: httpx.AsyncClient) -> list[tuple[str, int, str]]:
    """The thread events (an import also composes drafts: their events are not counted)."""
    items = (await api.get("/api/v1/events")).json()["items"]
    return [
        (e["type"], e["data"]["thread"]["id"], e["data"]["thread"]["reason"])
        for e in items
        if e["type"].startswith("thread.")
    ]


async def test_the_imported_threads_have_states_and_reasons(setup: Setup) -> None:
    states = {
        s: (t["state"], t["needs_response"], t["reason"], t["followups_sent"])
        for s, t in [(s, await thread(setup.api, i)) for s, i in setup.threads.items()]
    }
    assert states["Proposal"][0] == "quiet"
    assert "follow-up 1 of 3 is due" in states["Proposal"][2]
    assert states["Pricing"][:2] == ("replied", True)
    assert states["Next steps"][0] == "awaiting_reply"
    for state, _needs, reason, followups in states.values():
        assert reason.startswith(state.replace("_", " ")), reason
        assert followups == 0
    assert [(t, i) for t, i, _ in await events(setup.api)] == [
        ("thread.quiet", setup.threads["Proposal"])
    ]


async def test_get_and_put_rules(ctx: Context, setup: Setup) -> None:
    url = f"/api/v1/mailboxes/{setup.mailbox_id}/rules"
    defaults = (await setup.api.get(url)).json()
    assert defaults == {
        "wait_business_days": 3,
        "cadence_business_days": [3, 5, 7],
        "max_followups": 3,
        "auto_reply_pause_business_days": 5,
        "response_time_business_hours": 1.0,
        "working_hours": {"start": "09:00", "end": "17:00"},
        "time_off": [],
    }
    put = await setup.api.put(url, json={"wait_business_days": 10, "cadence_business_days": [4]})
    assert put.status_code == 200, put.text
    assert put.json() == {**defaults, "wait_business_days": 10, "cadence_business_days": [4]}
    assert (await setup.api.get(url)).json() == put.json()

    # The threads are looked at again under the new rules: 6 business days is not quiet now.
    assert await evaluate_mailbox(ctx.engine, ctx.clock, setup.mailbox_id) == 3
    proposal = await thread(setup.api, setup.threads["Proposal"])
    assert proposal["state"] == "awaiting_reply"
    assert "10 business days after your e-mail of Fri 13 Nov 10:00 UTC" in proposal["reason"]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"wait_business_days": -1}, "wait_business_days: Input should be greater than or equal"),
        ({"cadence_business_days": []}, "cadence_business_days: List should have at least 1"),
        ({"cadence_business_days": [3, 0]}, "cadence_business_days.1: Input should be greater"),
        ({"max_followups": 11}, "max_followups: Input should be less than or equal to 10"),
        ({"response_time_business_hours": 0}, "response_time_business_hours: Input should be"),
        (
            {"working_hours": {"start": "18:00", "end": "09:00"}},
            "start 18:00 must be before end 09:00",
        ),
        ({"working_hours": {"start": "25:00", "end": "26:00"}}, "String should match pattern"),
        (
            {"time_off": [{"start": "2026-12-24", "end": "2026-12-20"}]},
            "end 2026-12-20 is before start 2026-12-24",
        ),
        ({"time_off": [{"start": "soon", "end": "2026-12-20"}]}, "time_off.0.start"),
        ({"time_off": [{"start": "9999-12-30", "end": "9999-12-31"}]}, "between the years 2000"),
        ({"wait": 3}, "wait: Extra inputs are not permitted"),
    ],
)
async def test_bad_rules_are_a_clear_422(
    setup: Setup, body: dict[str, Any], complaint: str
) -> None:
    for method, path in [("PUT", "rules"), ("POST", "rules/preview")]:
        answer = await setup.api.request(
            method, f"/api/v1/mailboxes/{setup.mailbox_id}/{path}", json=body
        )
        assert answer.status_code == 422, answer.text
        assert complaint in answer.json()["detail"], answer.json()["detail"]


async def test_preview_says_what_would_change_and_saves_nothing(setup: Setup) -> None:
    base = f"/api/v1/mailboxes/{setup.mailbox_id}/rules"
    answer = await setup.api.post(f"{base}/preview", json={"wait_business_days": 10})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["threads_evaluated"] == 3 and preview["threads_changing"] == 1
    (item,) = preview["items"]
    assert item["thread_id"] == setup.threads["Proposal"]
    assert (item["state"], item["new_state"]) == ("quiet", "awaiting_reply")
    assert "quiet from" in item["new_reason"] and preview["truncated"] is False
    assert (await setup.api.get(base)).json()["wait_business_days"] == 3
    assert (await thread(setup.api, setup.threads["Proposal"]))["state"] == "quiet"

    strict = await setup.api.post(f"{base}/preview", json={"max_followups": 0})
    (closing,) = strict.json()["items"]
    assert closing["thread_id"] == setup.threads["Proposal"]
    assert (closing["state"], closing["new_state"]) == ("quiet", "closed")
    assert closing["new_reason"].startswith("closed: no_response")


async def test_another_users_mailbox_and_threads_are_404(setup: Setup) -> None:
    base = f"/api/v1/mailboxes/{setup.mailbox_id}/rules"
    thread_id = setup.threads["Proposal"]
    for method, path, body in [
        ("GET", base, None),
        ("PUT", base, {}),
        ("POST", f"{base}/preview", {}),
        ("POST", f"/api/v1/threads/{thread_id}/snooze", {"until": "2030-01-01T00:00:00Z"}),
        ("POST", f"/api/v1/threads/{thread_id}/close", {}),
        ("POST", f"/api/v1/threads/{thread_id}/reopen", None),
        ("POST", f"/api/v1/threads/{thread_id}/answered", {"note": "they called"}),
    ]:
        answer = await setup.other.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await setup.api.get(base)).status_code == 200
    assert (await thread(setup.api, thread_id))["state"] == "quiet"
    missing = await setup.api.post("/api/v1/threads/999999/close", json={})
    assert missing.status_code == 404


async def test_snooze_close_reopen_and_answered_emit_their_events(setup: Setup) -> None:
    api, proposal = setup.api, setup.threads["Proposal"]
    url = f"/api/v1/threads/{proposal}"

    past = await api.post(f"{url}/snooze", json={"until": "2026-11-23T09:59:00+00:00"})
    assert past.status_code == 422 and "must be in the future" in past.json()["detail"]
    naive = await api.post(f"{url}/snooze", json={"until": "2026-11-30T09:00:00"})
    assert naive.status_code == 422
    for far in ("9999-12-31T23:59:59-12:00", "2040-01-01T00:00:00Z"):
        too_far = await api.post(f"{url}/snooze", json={"until": far})
        assert too_far.status_code == 422, too_far.text

    snoozed = await api.post(f"{url}/snooze", json={"until": "2026-11-25T09:00:00+01:00"})
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["state"] == "snoozed"
    assert snoozed.json()["reason"] == "snoozed until Wed 25 Nov 08:00 UTC"
    assert snoozed.json()["next_check_at"] == "2026-11-25T08:00:00+00:00"

    closed = await api.post(f"{url}/close", json={"reason": "went with a competitor"})
    assert closed.json()["state"] == "closed"
    assert closed.json()["reason"] == "closed: by you — went with a competitor"
    refused = await api.post(f"{url}/snooze", json={"until": "2026-12-01T09:00:00Z"})
    assert refused.status_code == 409 and "reopen it" in refused.json()["detail"]

    reopened = await api.post(f"{url}/reopen")
    assert reopened.json()["state"] == "awaiting_reply"
    assert "you reopened it on Mon 23 Nov 10:00 UTC" in reopened.json()["reason"]
    again = await api.post(f"{url}/reopen")
    assert again.status_code == 409 and "awaiting_reply" in again.json()["detail"]

    noted = await api.post(f"{url}/answered", json={"note": "  they called,\n want a demo "})
    assert noted.json()["state"] == "replied" and noted.json()["needs_response"] is False
    assert noted.json()["reason"] == (
        "replied: you noted an answer on Mon 23 Nov 10:00 UTC: “they called, want a demo”"
    )
    empty = await api.post(f"{url}/answered", json={"note": ""})
    assert empty.status_code == 422
    bare_close = await api.post(f"/api/v1/threads/{setup.threads['Next steps']}/close")
    assert bare_close.json()["reason"] == "closed: by you"

    assert [(t, i) for t, i, _ in await events(api)] == [
        ("thread.quiet", proposal),
        ("thread.closed", proposal),
        ("thread.replied", proposal),
        ("thread.closed", setup.threads["Next steps"]),
    ]
    assert (await events(api))[2][2].endswith("“they called, want a demo”")
    shown = await thread(api, proposal)
    assert shown["state"] == "replied" and shown["reason"] == noted.json()["reason"]


async def test_time_off_pauses_every_watched_thread_until_the_rep_is_back(
    ctx: Context, setup: Setup
) -> None:
    url = f"/api/v1/mailboxes/{setup.mailbox_id}/rules"
    away = {"time_off": [{"start": "2026-11-20", "end": "2026-11-27"}]}
    assert (await setup.api.put(url, json=away)).status_code == 200
    await evaluate_mailbox(ctx.engine, ctx.clock, setup.mailbox_id)
    for subject in ("Proposal", "Next steps"):
        shown = await thread(setup.api, setup.threads[subject])
        assert shown["state"] == "paused", shown
        assert shown["reason"] == (
            "paused: you are away until Fri 27 Nov (time off); looking again Mon 30 Nov 09:00 UTC"
        )
        assert shown["next_check_at"] == "2026-11-30T09:00:00+00:00"
    assert (await thread(setup.api, setup.threads["Pricing"]))["state"] == "replied"
    paused = [i for t, i, _ in await events(setup.api) if t == "thread.paused"]
    assert sorted(paused) == sorted([setup.threads["Proposal"], setup.threads["Next steps"]])

    # Back on Monday: the quiet thread is quiet again (and announced again).
    ctx.clock = lambda: datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    await evaluate_mailbox(ctx.engine, ctx.clock, setup.mailbox_id)
    assert (await thread(setup.api, setup.threads["Proposal"]))["state"] == "quiet"
    back = [(t, i) for t, i, _ in (await events(setup.api))[-2:]]
    assert sorted(back) == sorted(
        [("thread.quiet", setup.threads["Proposal"]), ("thread.quiet", setup.threads["Next steps"])]
    )


async def test_backtest_over_the_stored_mail(ctx: Context, setup: Setup) -> None:
    report = await backtest_mailbox(ctx, setup.mailbox_id, days=30)
    assert report.threads == 3
    assert [(f.thread, f.day.isoformat()) for f in report.flags] == [
        (setup.threads["Proposal"], "2026-11-18")
    ]
    assert report.false_alarm_rate == 0.0
