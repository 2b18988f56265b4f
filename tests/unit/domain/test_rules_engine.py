"""The rules engine beyond the defaults: calendars, cadence, the rep's own signals, time off,
and the properties every decision keeps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.calendars import work_calendar
from app.domain.model import MessageKind as K
from app.domain.model import Rules, Subkind, ThreadHistory, ThreadMessage, TimeOff
from app.domain.model import ThreadState as S
from app.domain.rules import decide, followups_sent
from app.domain.worktime import WorkCalendar

BERLIN = work_calendar(timezone="Europe/Berlin", country="DE", subdiv="BE", years=[2026, 2027])
NEW_YORK = work_calendar(timezone="America/New_York", country="US", subdiv="NY", years=[2026])
ISRAEL = work_calendar(timezone="Asia/Jerusalem", country="IL", years=[2026])
LOS_ANGELES = work_calendar(timezone="America/Los_Angeles", country="US", subdiv="CA", years=[2026])
LEAP = WorkCalendar(timezone="UTC", weekend=frozenset({5, 6}))
RULES = Rules()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def out(at: datetime) -> ThreadMessage:
    return ThreadMessage(
        message_id=f"<o{at.timestamp()}@s>", kind=K.OUTBOUND, date=at, sender="rep@s.com"
    )


def reply(at: datetime, *, decline: bool = False) -> ThreadMessage:
    return ThreadMessage(
        message_id=f"<r{at.timestamp()}@b>",
        kind=K.REPLY,
        date=at,
        sender="anna@buyer.org",
        decline=decline,
    )


def auto(at: datetime, back: date | None = None) -> ThreadMessage:
    return ThreadMessage(
        message_id=f"<a{at.timestamp()}@b>",
        kind=K.AUTO_REPLY,
        date=at,
        sender="anna@buyer.org",
        subkind=Subkind.OUT_OF_OFFICE,
        return_date=back,
    )


def h(*messages: ThreadMessage, **manual: object) -> ThreadHistory:
    return ThreadHistory(messages=messages, **manual)  # type: ignore[arg-type]


# --- when a thread turns quiet: (case, calendar, rules, history, expected next check (UTC)) ----

DUE_CASES = [
    (
        "EU DST switch keeps the wall clock (Fri 14:00 CET -> Wed 14:00 CEST)",
        BERLIN,
        RULES,
        h(out(utc(2026, 3, 27, 13, 0))),
        utc(2026, 4, 1, 12, 0),
    ),
    (
        "US DST switch (Fri 15:00 EST -> Wed 15:00 EDT)",
        NEW_YORK,
        RULES,
        h(out(utc(2026, 3, 6, 20, 0))),
        utc(2026, 3, 11, 19, 0),
    ),
    (
        "EU autumn switch (Fri 14:00 CEST -> Wed 14:00 CET)",
        BERLIN,
        RULES,
        h(out(utc(2026, 10, 23, 12, 0))),
        utc(2026, 10, 28, 13, 0),
    ),
    (
        "holiday on the due day moves it (New Year's Day)",
        BERLIN,
        RULES,
        h(out(utc(2026, 12, 29, 9, 0))),
        utc(2027, 1, 4, 9, 0),
    ),
    (
        "Fri/Sat weekend (Israel): Thu 14:00 + 3 is Tue 14:00",
        ISRAEL,
        RULES,
        h(out(utc(2026, 3, 5, 12, 0))),
        utc(2026, 3, 10, 12, 0),
    ),
    (
        "Sat/Sun weekend: Fri 14:02 + 3 is Wed 14:02",
        BERLIN,
        RULES,
        h(out(utc(2026, 11, 13, 13, 2))),
        utc(2026, 11, 18, 13, 2),
    ),
    (
        "29 February 2028 is a business day",
        LEAP,
        RULES,
        h(out(utc(2028, 2, 24, 10, 0))),
        utc(2028, 2, 29, 10, 0),
    ),
    (
        "Friday 19:00 counts from Monday morning",
        BERLIN,
        RULES,
        h(out(utc(2026, 11, 13, 18, 0))),
        utc(2026, 11, 19, 8, 0),
    ),
    (
        "custom working hours 08:00-12:00: 13:00 counts from the next morning",
        work_calendar(
            timezone="Europe/Berlin",
            country="DE",
            years=[2026],
            day_start=time(8, 0),
            day_end=time(12, 0),
        ),
        Rules(work_day_start=time(8, 0), work_day_end=time(12, 0)),
        h(out(utc(2026, 11, 16, 12, 0))),
        utc(2026, 11, 20, 7, 0),
    ),
    (
        "wait of 5 business days",
        BERLIN,
        Rules(wait_business_days=5),
        h(out(utc(2026, 11, 13, 13, 2))),
        utc(2026, 11, 20, 13, 2),
    ),
    (
        "after follow-up 1 the cadence's first step (3)",
        BERLIN,
        RULES,
        h(out(utc(2026, 11, 2, 9, 0)), out(utc(2026, 11, 5, 9, 0))),
        utc(2026, 11, 10, 9, 0),
    ),
    (
        "after follow-up 2 the cadence's second step (5)",
        BERLIN,
        RULES,
        h(out(utc(2026, 11, 2, 9, 0)), out(utc(2026, 11, 5, 9, 0)), out(utc(2026, 11, 10, 9, 0))),
        utc(2026, 11, 17, 9, 0),
    ),
    (
        "auto-reply with a return date on a holiday: one business day after",
        BERLIN,
        RULES,
        h(out(utc(2026, 12, 18, 9, 0)), auto(utc(2026, 12, 18, 9, 5), back=date(2026, 12, 25))),
        utc(2026, 12, 29, 8, 0),
    ),
]


@pytest.mark.parametrize(("case", "cal", "rules", "thread", "due"), DUE_CASES)
def test_when_a_thread_turns_quiet(
    case: str, cal: WorkCalendar, rules: Rules, thread: ThreadHistory, due: datetime
) -> None:
    sent = thread.messages[-1].date
    waiting = decide(thread, rules, cal, sent + timedelta(minutes=10))
    assert waiting.state in {S.AWAITING_REPLY, S.PAUSED}, (case, waiting.reason)
    assert waiting.next_check_at is not None
    # The pause of an auto-reply and the wait after it can end together; follow the checks.
    at = waiting.next_check_at
    decision = decide(thread, rules, cal, at)
    while decision.state is not S.QUIET:
        assert decision.next_check_at is not None, (case, decision.reason)
        at = decision.next_check_at
        decision = decide(thread, rules, cal, at)
    assert at == due, (case, decision.reason)
    assert decide(thread, rules, cal, due - timedelta(seconds=1)).state is not S.QUIET, case


def test_holiday_on_the_due_day_is_named() -> None:
    decision = decide(h(out(utc(2026, 12, 29, 9, 0))), RULES, BERLIN, utc(2027, 1, 4, 9, 0))
    assert decision.state is S.QUIET
    assert "Fri 01 Jan skipped as a holiday (New Year's Day)" in decision.reason


def test_far_apart_zones_use_the_mailbox_clock() -> None:
    """A rep in Los Angeles, a prospect in Apia (UTC+13): the prospect's Monday 09:00 is the
    rep's Sunday noon, so the rep owes the answer one business hour into Monday."""
    sent = utc(2026, 11, 14, 0, 0)  # Fri 16:00 in Los Angeles
    answer = datetime(2026, 11, 16, 9, 0, tzinfo=ZoneInfoApia)  # Mon 09:00 in Apia
    thread = h(out(sent), reply(answer))
    assert answer.astimezone(UTC) == utc(2026, 11, 15, 20, 0)  # Sun 12:00 in Los Angeles
    calm = decide(thread, RULES, LOS_ANGELES, utc(2026, 11, 16, 17, 59))
    assert calm.state is S.REPLIED and not calm.needs_response
    assert calm.next_check_at == utc(2026, 11, 16, 18, 0)  # Mon 10:00 in Los Angeles
    owed = decide(thread, RULES, LOS_ANGELES, utc(2026, 11, 16, 18, 0))
    assert owed.needs_response and "Sun 15 Nov 12:00 America/Los_Angeles" in owed.reason


ZoneInfoApia = __import__("zoneinfo").ZoneInfo("Pacific/Apia")


# --- follow-ups: counted from the mail, stepped, closed -----------------------------------------

SENT = utc(2026, 11, 2, 9, 0)  # Mon 10:00 Berlin


@pytest.mark.parametrize(
    ("case", "thread", "expected"),
    [
        ("one e-mail", h(out(SENT)), 0),
        ("written twice", h(out(SENT), out(SENT + timedelta(days=3))), 1),
        (
            "a reply resets the count",
            h(
                out(SENT),
                out(SENT + timedelta(days=3)),
                reply(SENT + timedelta(days=4)),
                out(SENT + timedelta(days=5)),
            ),
            0,
        ),
        ("an inbound lead", h(reply(SENT)), 0),
        (
            "the rep's note resets it",
            h(out(SENT), out(SENT + timedelta(days=3)), answered_at=SENT + timedelta(days=4)),
            0,
        ),
    ],
)
def test_followups_sent_come_from_the_mail(case: str, thread: ThreadHistory, expected: int) -> None:
    assert followups_sent(thread) == expected, case


def test_quiet_steps_and_the_final_permission_to_say_no() -> None:
    steps = [SENT, utc(2026, 11, 5, 9, 0), utc(2026, 11, 10, 9, 0)]
    for n in range(1, 4):
        thread = h(*(out(t) for t in steps[:n]))
        decision = decide(thread, RULES, BERLIN, utc(2026, 12, 31, 12, 0))
        assert decision.state is S.QUIET
        assert decision.step == n == decision.followups_sent + 1
        assert f"follow-up {n} of 3 is due" in decision.reason
    assert "permission to say no" in decision.reason


def test_after_the_last_follow_up_the_thread_closes_as_no_response() -> None:
    thread = h(*(out(SENT + timedelta(days=d)) for d in (0, 3, 8, 15)))
    waiting = decide(thread, RULES, BERLIN, SENT + timedelta(days=16))
    assert waiting.state is S.AWAITING_REPLY and waiting.followups_sent == 3
    closed = decide(thread, RULES, BERLIN, SENT + timedelta(days=40))
    assert closed.state is S.CLOSED and "no_response" in closed.reason


def test_custom_cadence_and_maximum() -> None:
    rules = Rules(wait_business_days=2, cadence_business_days=(4,), max_followups=1)
    first = decide(h(out(SENT)), rules, BERLIN, SENT + timedelta(days=2))
    assert first.state is S.QUIET and "permission to say no" in first.reason
    second = h(out(SENT), out(SENT + timedelta(days=2)))
    assert decide(second, rules, BERLIN, SENT + timedelta(days=5)).state is S.AWAITING_REPLY
    assert decide(second, rules, BERLIN, SENT + timedelta(days=8)).state is S.CLOSED


def test_zero_follow_ups_closes_after_the_first_wait() -> None:
    rules = Rules(max_followups=0)
    assert decide(h(out(SENT)), rules, BERLIN, SENT + timedelta(days=5)).state is S.CLOSED


# --- the rep's own word ----------------------------------------------------------------------


def test_answered_outside_email_is_replied_with_the_note() -> None:
    thread = h(out(SENT), answered_at=SENT + timedelta(days=1), answered_note="they called")
    decision = decide(thread, RULES, BERLIN, SENT + timedelta(days=10))
    assert decision.state is S.REPLIED and not decision.needs_response
    assert (
        decision.reason
        == "replied: you noted an answer on Tue 3 Nov 10:00 Europe/Berlin: “they called”"
    )
    assert decision.next_check_at is None


def test_writing_after_the_note_restarts_the_wait() -> None:
    again = SENT + timedelta(days=2)
    thread = h(out(SENT), out(again), answered_at=SENT + timedelta(days=1), answered_note="met")
    decision = decide(thread, RULES, BERLIN, again + timedelta(hours=1))
    assert decision.state is S.AWAITING_REPLY and decision.followups_sent == 0


def test_a_reply_after_the_note_wins() -> None:
    thread = h(out(SENT), reply(SENT + timedelta(days=2)), answered_at=SENT + timedelta(days=1))
    decision = decide(thread, RULES, BERLIN, SENT + timedelta(days=2, minutes=5))
    assert decision.state is S.REPLIED and "anna@buyer.org replied" in decision.reason


def test_reopen_after_a_decline_watches_again_from_the_reopening() -> None:
    no = reply(SENT + timedelta(hours=3), decline=True)
    reopened = utc(2026, 11, 9, 9, 0)  # Mon 10:00 Berlin
    closed = decide(h(out(SENT), no), RULES, BERLIN, reopened)
    assert closed.state is S.CLOSED and "declined" in closed.reason
    thread = h(out(SENT), no, reopened_at=reopened)
    waiting = decide(thread, RULES, BERLIN, reopened + timedelta(hours=1))
    assert waiting.state is S.AWAITING_REPLY
    assert "you reopened it on Mon 9 Nov 10:00" in waiting.reason
    assert waiting.next_check_at == utc(2026, 11, 12, 9, 0)


def test_reopen_after_no_response_restarts_the_follow_ups() -> None:
    thread = h(
        *(out(SENT + timedelta(days=d)) for d in (0, 3, 8, 15)),
        reopened_at=SENT + timedelta(days=40),
    )
    decision = decide(thread, RULES, BERLIN, SENT + timedelta(days=50))
    assert decision.state is S.QUIET and decision.step == 1 and decision.followups_sent == 0


def test_snooze_ends_by_itself() -> None:
    until = SENT + timedelta(days=2)
    thread = h(out(SENT), snoozed_until=until)
    snoozed = decide(thread, RULES, BERLIN, SENT + timedelta(days=1))
    assert snoozed.state is S.SNOOZED and snoozed.next_check_at == until
    assert decide(thread, RULES, BERLIN, until).state is S.AWAITING_REPLY


# --- the rep's time off ----------------------------------------------------------------------

AWAY = Rules(time_off=(TimeOff(start=date(2026, 11, 9), end=date(2026, 11, 13)),))


@pytest.mark.parametrize(
    ("case", "thread", "now", "state", "next_check"),
    [
        (
            "a quiet thread is paused while away",
            h(out(SENT)),
            utc(2026, 11, 10, 12, 0),
            S.PAUSED,
            utc(2026, 11, 16, 8, 0),  # Mon 09:00 Berlin, the first working moment back
        ),
        (
            "an awaiting thread is paused too",
            h(out(utc(2026, 11, 9, 9, 0))),
            utc(2026, 11, 9, 10, 0),
            S.PAUSED,
            utc(2026, 11, 16, 8, 0),
        ),
        (
            "before leaving: look again when the time off starts",
            h(out(utc(2026, 11, 5, 9, 0))),
            utc(2026, 11, 5, 10, 0),
            S.AWAITING_REPLY,
            utc(2026, 11, 8, 23, 0),  # Mon 00:00 Berlin
        ),
        (
            "back: quiet again, looked at again when the next business day completes",
            h(out(SENT)),
            utc(2026, 11, 16, 8, 0),
            S.QUIET,
            utc(2026, 11, 16, 9, 0),
        ),
        (
            "a reply is still a reply",
            h(out(SENT), reply(SENT + timedelta(hours=1))),
            utc(2026, 11, 10, 12, 0),
            S.REPLIED,
            None,
        ),
    ],
)
def test_time_off(
    case: str, thread: ThreadHistory, now: datetime, state: S, next_check: datetime | None
) -> None:
    decision = decide(thread, AWAY, BERLIN, now)
    assert decision.state is state, (case, decision.reason)
    assert decision.next_check_at == next_check, (case, decision.reason)
    if state is S.PAUSED:
        assert decision.reason.startswith("paused: you are away until Fri 13 Nov (time off)")


def test_back_to_back_time_off_is_one_absence() -> None:
    rules = Rules(
        time_off=(
            TimeOff(start=date(2026, 11, 9), end=date(2026, 11, 13)),
            TimeOff(start=date(2026, 11, 14), end=date(2026, 11, 20)),
        )
    )
    decision = decide(h(out(SENT)), rules, BERLIN, utc(2026, 11, 10, 12, 0))
    assert decision.next_check_at == utc(2026, 11, 23, 8, 0)
    assert "away until Fri 20 Nov" in decision.reason


def test_time_off_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="ends"):
        TimeOff(start=date(2026, 11, 9), end=date(2026, 11, 8))


# --- properties ------------------------------------------------------------------------------

T0 = utc(2026, 3, 2, 0, 0)
kinds = st.sampled_from([K.OUTBOUND, K.OUTBOUND, K.REPLY, K.AUTO_REPLY, K.BOUNCE, K.BULK])


@st.composite
def histories(draw: st.DrawFn) -> ThreadHistory:
    count = draw(st.integers(0, 6))
    offsets = sorted(draw(st.lists(st.integers(0, 60 * 24 * 40), min_size=count, max_size=count)))
    messages = []
    for i, minutes in enumerate(offsets):
        kind = draw(kinds)
        back = draw(st.none() | st.dates(date(2026, 3, 1), date(2026, 5, 1)))
        messages.append(
            ThreadMessage(
                message_id=f"<{i}@x>",
                kind=kind,
                date=T0 + timedelta(minutes=minutes),
                sender="rep@s.com" if kind is K.OUTBOUND else "anna@buyer.org",
                return_date=back if kind is K.AUTO_REPLY else None,
                decline=kind is K.REPLY and draw(st.booleans()),
            )
        )
    snooze = draw(st.none() | st.integers(0, 60 * 24 * 40))
    return ThreadHistory(
        messages=tuple(messages),
        snoozed_until=T0 + timedelta(minutes=snooze) if snooze is not None else None,
    )


rule_sets = st.builds(
    Rules,
    wait_business_days=st.integers(1, 10),
    cadence_business_days=st.lists(st.integers(1, 10), min_size=1, max_size=4).map(tuple),
    max_followups=st.integers(0, 5),
    auto_reply_pause_business_days=st.integers(1, 10),
)
calendars = st.sampled_from([BERLIN, NEW_YORK, ISRAEL, LEAP])
moments = st.integers(0, 60 * 24 * 80).map(lambda m: T0 + timedelta(minutes=m))
# Without new mail a thread moves only this way; replied threads only gain needs_response.
_RANK = {S.SNOOZED: 0, S.PAUSED: 1, S.AWAITING_REPLY: 2, S.QUIET: 3, S.CLOSED: 4}


@settings(max_examples=300, deadline=None)
@given(history=histories(), rules=rule_sets, cal=calendars, now=moments)
def test_next_check_is_never_in_the_past(
    history: ThreadHistory, rules: Rules, cal: WorkCalendar, now: datetime
) -> None:
    decision = decide(history, rules, cal, now)
    assert decision.next_check_at is None or decision.next_check_at > now
    assert decision.reason.startswith(decision.state.value.replace("_", " ")) or (
        decision.state is S.AWAITING_REPLY and decision.reason.startswith("awaiting reply")
    )
    assert decision.step == (decision.followups_sent + 1 if decision.state is S.QUIET else 0)


@settings(max_examples=300, deadline=None)
@given(history=histories(), rules=rule_sets, cal=calendars, now=moments, later=moments)
def test_without_new_mail_the_state_only_moves_forward(
    history: ThreadHistory, rules: Rules, cal: WorkCalendar, now: datetime, later: datetime
) -> None:
    now, later = sorted((now, later))
    last_mail = max((m.date for m in history.messages), default=T0)
    now, later = max(now, last_mail), max(later, last_mail)
    first, second = decide(history, rules, cal, now), decide(history, rules, cal, later)
    if first.state in _RANK and second.state in _RANK:
        assert _RANK[first.state] <= _RANK[second.state], (first.reason, second.reason)
    else:
        assert first.state is second.state or first.state is S.SNOOZED, (first, second)
        assert first.needs_response <= second.needs_response or first.state is S.SNOOZED


@settings(max_examples=200, deadline=None)
@given(history=histories(), rules=rule_sets, cal=calendars, now=moments)
def test_same_inputs_same_decision(
    history: ThreadHistory, rules: Rules, cal: WorkCalendar, now: datetime
) -> None:
    assert decide(history, rules, cal, now) == decide(history, rules, cal, now)


@settings(max_examples=200, deadline=None)
@given(
    history=histories(),
    cal=calendars,
    now=moments,
    start=st.integers(-20, 40),
    span=st.integers(0, 20),
)
def test_time_off_never_leaves_a_thread_quiet_or_a_check_in_the_past(
    history: ThreadHistory, cal: WorkCalendar, now: datetime, start: int, span: int
) -> None:
    first = now.astimezone(cal.tz).date() + timedelta(days=start)
    rules = Rules(time_off=(TimeOff(start=first, end=first + timedelta(days=span)),))
    decision = decide(history, rules, cal, now)
    assert decision.next_check_at is None or decision.next_check_at > now
    if first <= now.astimezone(cal.tz).date() <= first + timedelta(days=span):
        assert decision.state is not S.QUIET
