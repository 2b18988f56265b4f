"""The retry schedule and the meaning of answers, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.webhooks.schedule import (
    MAX_ATTEMPTS,
    RETRY_DELAYS,
    Verdict,
    parse_retry_after,
    retry_delay,
    settle,
    verdict,
)

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
S, M, H = timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, Verdict.SUCCEEDED),
        (201, Verdict.SUCCEEDED),
        (204, Verdict.SUCCEEDED),
        (299, Verdict.SUCCEEDED),
        (301, Verdict.FAILED),  # redirects are failures, never followed
        (302, Verdict.FAILED),
        (308, Verdict.FAILED),
        (400, Verdict.FAILED),
        (401, Verdict.FAILED),
        (404, Verdict.FAILED),
        (410, Verdict.GONE),
        (429, Verdict.THROTTLED),
        (500, Verdict.FAILED),
        (502, Verdict.THROTTLED),
        (503, Verdict.FAILED),
        (504, Verdict.THROTTLED),
        (None, Verdict.FAILED),  # no answer at all
    ],
)
def test_verdicts(status: int | None, expected: Verdict) -> None:
    assert verdict(status) is expected


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [
        (1, 5 * S),
        (2, 5 * M),
        (3, 30 * M),
        (4, 2 * H),
        (5, 5 * H),
        (6, 10 * H),
        (7, 10 * H),
        (11, 10 * H),
        (MAX_ATTEMPTS - 1, 10 * H),
        (MAX_ATTEMPTS, None),  # dead-lettered
        (MAX_ATTEMPTS + 3, None),
    ],
)
def test_schedule_without_jitter(attempts_made: int, delay: timedelta | None) -> None:
    assert retry_delay(attempts_made, rand=0.5) == delay


def test_the_whole_schedule_spans_about_three_days() -> None:
    total = sum(RETRY_DELAYS, timedelta())
    assert timedelta(days=2.5) <= total <= timedelta(days=3.5)
    assert total == timedelta(hours=67, minutes=35, seconds=5)


@pytest.mark.parametrize("attempts_made", range(1, MAX_ATTEMPTS))
def test_jitter_stays_within_twenty_percent(attempts_made: int) -> None:
    base = RETRY_DELAYS[attempts_made - 1]
    low = retry_delay(attempts_made, rand=0.0)
    high = retry_delay(attempts_made, rand=0.999999)
    assert low == base * 0.8
    assert high is not None and base * 1.19 < high <= base * 1.2


@pytest.mark.parametrize(
    ("attempts_made", "delay"),
    [(1, 5 * M), (2, 30 * M), (5, 10 * H), (MAX_ATTEMPTS - 1, 10 * H), (MAX_ATTEMPTS, None)],
)
def test_throttling_answers_back_off_one_step_harder(
    attempts_made: int, delay: timedelta | None
) -> None:
    assert retry_delay(attempts_made, throttled=True) == delay


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        (2 * S, 5 * S),  # shorter than the schedule: the schedule wins
        (90 * S, 90 * S),  # longer: honoured
        (48 * H, 24 * H),  # capped
    ],
)
def test_retry_after_is_honoured_and_capped(retry_after: timedelta, delay: timedelta) -> None:
    assert retry_delay(1, retry_after=retry_after) == delay


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120 * S),
        (" 0 ", timedelta(0)),
        ("Mon, 02 Nov 2026 09:10:00 GMT", 10 * M),
        ("Mon, 02 Nov 2026 08:00:00 GMT", timedelta(0)),  # in the past: now
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, expected: timedelta | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_settle_table() -> None:
    ok = settle(attempts_made=3, outcome=Verdict.SUCCEEDED, now=NOW)
    assert (ok.status, ok.next_attempt_at, ok.disable_endpoint) == ("succeeded", None, False)
    gone = settle(attempts_made=1, outcome=Verdict.GONE, now=NOW)
    assert (gone.status, gone.disable_endpoint) == ("dead", True)
    again = settle(attempts_made=1, outcome=Verdict.FAILED, now=NOW)
    assert (again.status, again.next_attempt_at) == ("pending", NOW + 5 * S)
    slow = settle(attempts_made=1, outcome=Verdict.THROTTLED, now=NOW, retry_after=20 * M)
    assert slow.next_attempt_at == NOW + 20 * M
    last = settle(attempts_made=MAX_ATTEMPTS, outcome=Verdict.FAILED, now=NOW)
    assert (last.status, last.next_attempt_at, last.disable_endpoint) == ("dead", None, False)
