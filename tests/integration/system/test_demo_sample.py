"""The demo's sample mailbox reaches every state it was written for, under the default rules,
on whatever day it is imported: a Monday, a Saturday, a US public holiday, today."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.calendars import work_calendar
from app.demo import sample as demo_sample
from app.demo.maildir import write_maildir
from app.domain.model import Rules
from app.services import accounts, imports
from app.services.context import Context
from tests.support.api import api_client

pytestmark = pytest.mark.integration
EVERY_STATE = {"quiet", "awaiting_reply", "replied", "paused", "bounced", "closed", "ignored"}


def calendar_at(now: datetime) -> object:
    rules = Rules()
    return work_calendar(
        timezone=demo_sample.TIMEZONE,
        country=demo_sample.HOLIDAY_COUNTRY,
        subdiv=None,
        years=range(now.year - 1, now.year + 2),
        day_start=rules.work_day_start,
        day_end=rules.work_day_end,
    )


@pytest.mark.parametrize(
    "now",
    [
        datetime(2026, 11, 30, 14, 0, tzinfo=UTC),  # a Monday morning in New York
        datetime(2026, 12, 5, 20, 0, tzinfo=UTC),  # a Saturday
        datetime(2026, 11, 26, 16, 0, tzinfo=UTC),  # Thanksgiving Day
        datetime(2027, 1, 4, 3, 0, tzinfo=UTC),  # Sunday night, after New Year
        None,  # the day the tests run
    ],
)
async def test_the_sample_reaches_every_state_it_was_written_for(
    ctx: Context, tmp_path: Path, now: datetime | None
) -> None:
    now = now or datetime.now(UTC)
    ctx.clock = lambda: now
    calendar = calendar_at(now)
    sample = demo_sample.sample_mailbox(now, calendar)  # type: ignore[arg-type]
    write_maildir(sample, tmp_path / "sample")
    await accounts.create_user(ctx, email=sample.rep_address, password="pw-123456789")
    outcome = await imports.import_mail(
        ctx,
        tmp_path / "sample",
        email=sample.rep_address,
        mailbox_name="Demo",
        addresses=[sample.rep_address],
        timezone=sample.timezone,
        holiday_country=sample.holiday_country,
    )
    assert outcome.skipped == 0
    assert outcome.folders == 3  # INBOX, Sent, Newsletters
    assert len(sample.expected) >= 30
    async with await api_client(ctx, sample.rep_address, create_user=False) as api:
        listed = await api.get("/api/v1/threads", params={"limit": 200})
        threads = {t["message_ids"][0]: t for t in listed.json()["items"]}
        assert set(threads) == set(sample.expected)
        wrong = {
            e.subject: (t["state"], t["needs_response"], t["followups_sent"], t["reason"])
            for key, e in sample.expected.items()
            if (t := threads[key])["state"] != e.state
            or t["needs_response"] != e.needs_response
            or t["followups_sent"] != e.followups_sent
        }
        assert wrong == {}
        assert {t["state"] for t in threads.values()} == EVERY_STATE
        quiet = [t for t in threads.values() if t["state"] == "quiet"]
        assert {t["followups_sent"] + 1 for t in quiet} == {1, 2, 3}
        assert any(t["needs_response"] for t in threads.values())
        reasons = " ".join(t["reason"] for t in threads.values())
        assert "has left the company; they name Sofia Marin" in reasons
        assert "declined" in reasons and "no_response" in reasons
        assert "automatic reply" in reasons and "back on" in reasons

        drafts = (await api.get("/api/v1/drafts", params={"state": "pending"})).json()["items"]
        assert sorted(d["thread_id"] for d in drafts) == sorted(t["id"] for t in quiet)
        assert outcome.drafts_created == len(quiet)
