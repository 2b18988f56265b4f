"""Replaying the rules over old mail: flags, false alarms and the report."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from app.domain.backtest import replay, weekly_table
from app.domain.model import MessageKind as K
from app.domain.model import Rules, ThreadMessage, TimeOff
from app.domain.ruleset import rules_from_dict, rules_to_dict
from app.domain.worktime import WorkCalendar

CAL = WorkCalendar(timezone="Europe/Berlin", weekend=frozenset({5, 6}))
MON = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # Mon 10:00 Berlin


def m(kind: K, at: datetime) -> ThreadMessage:
    sender = "rep@s.com" if kind is K.OUTBOUND else "anna@buyer.org"
    return ThreadMessage(
        message_id=f"<{kind}{at.timestamp()}@x>", kind=kind, date=at, sender=sender
    )


def test_replay_counts_flags_and_false_alarms() -> None:
    threads = {
        1: [m(K.OUTBOUND, MON)],  # quiet from Thu 5 Nov, never answered
        2: [m(K.OUTBOUND, MON), m(K.REPLY, MON + timedelta(days=10))],  # quiet, answered later
        3: [m(K.OUTBOUND, MON), m(K.REPLY, MON + timedelta(days=1))],  # answered in time
        4: [m(K.BULK, MON)],
    }
    report = replay(threads, Rules(), CAL, first_day=date(2026, 11, 1), last_day=date(2026, 11, 30))
    assert [(f.thread, f.day) for f in report.flags] == [
        (1, date(2026, 11, 5)),
        (2, date(2026, 11, 5)),
    ]
    assert report.threads == 4
    assert report.threads_flagged == 2 and report.threads_answered_later == 1
    assert report.false_alarm_rate == 0.5
    lines = weekly_table(report)
    assert lines[-1] == (
        "backtest: 30 days, 4 threads, 2 flagged quiet, 1 answered later anyway "
        "(false-alarm rate 50.0%)"
    )
    assert any(line.startswith("2026-11-02") and " 2 " in line for line in lines)


def test_replay_uses_only_mail_known_at_each_day_end() -> None:
    """A follow-up written later makes a second flag, at the next step."""
    thread = [m(K.OUTBOUND, MON), m(K.OUTBOUND, MON + timedelta(days=4))]  # follow-up on Fri
    report = replay(
        {7: thread}, Rules(), CAL, first_day=date(2026, 11, 1), last_day=date(2026, 11, 20)
    )
    assert [(f.day, f.step) for f in report.flags] == [
        (date(2026, 11, 5), 1),
        (date(2026, 11, 11), 2),
    ]
    assert report.threads_flagged == 1


def test_a_thread_quiet_before_the_window_is_not_flagged_again() -> None:
    report = replay(
        {1: [m(K.OUTBOUND, MON)]},
        Rules(),
        CAL,
        first_day=date(2026, 11, 10),
        last_day=date(2026, 11, 20),
    )
    assert report.flags == ()


def test_replay_refuses_an_empty_window() -> None:
    with pytest.raises(ValueError, match="before"):
        replay({}, Rules(), CAL, first_day=date(2026, 11, 2), last_day=date(2026, 11, 1))


def test_rules_round_trip_through_json() -> None:
    rules = Rules(
        wait_business_days=4,
        cadence_business_days=(2, 9),
        max_followups=2,
        work_day_start=time(8, 30),
        work_day_end=time(18, 0),
        time_off=(TimeOff(start=date(2026, 12, 21), end=date(2027, 1, 1)),),
    )
    stored = rules_to_dict(rules)
    assert stored["working_hours"] == {"start": "08:30", "end": "18:00"}
    assert stored["time_off"] == [{"start": "2026-12-21", "end": "2027-01-01"}]
    assert rules_from_dict(stored) == rules
    assert rules_from_dict({}) == Rules() == rules_from_dict(None)
    assert rules_from_dict({"cadence_business_days": [4]}).cadence_business_days == (4,)


@pytest.mark.parametrize(
    "bad",
    [
        {"cadence_business_days": []},
        {"wait_business_days": -1},
        {"working_hours": {"start": "18:00", "end": "09:00"}},
        {"time_off": [{"start": "2026-12-02"}]},
        {"time_off": [{"start": "2026-12-02", "end": "2026-12-01"}]},
        {"max_followups": -2},
    ],
)
def test_stored_nonsense_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        rules_from_dict(bad)
