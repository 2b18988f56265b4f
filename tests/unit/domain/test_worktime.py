"""Business-time clock: app.domain.worktime (pure) and app.calendars (holidays adapter)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.calendars import work_calendar
from app.domain.worktime import (
    MAX_NON_WORKING_RUN,
    WorkCalendar,
    add_business_days,
    add_business_hours,
    business_days_elapsed,
    describe_local,
    next_business_day_completes,
    next_working_moment,
)

BERLIN = work_calendar(timezone="Europe/Berlin", country="DE", subdiv="BE", years=[2026, 2027])
NEW_YORK = work_calendar(timezone="America/New_York", country="US", subdiv="NY", years=[2026])
LOS_ANGELES = work_calendar(
    timezone="America/Los_Angeles", country="US", subdiv="CA", years=[2026, 2027]
)
ISRAEL = work_calendar(timezone="Asia/Jerusalem", country="IL", years=[2026])
APIA = work_calendar(timezone="Pacific/Apia", country=None, years=[2011, 2026])
PLAIN_BERLIN = WorkCalendar(timezone="Europe/Berlin", weekend=frozenset({5, 6}), holidays={})
LEAP = WorkCalendar(timezone="UTC", weekend=frozenset({5, 6}), holidays={})
# Works every day from 02:30, so DST gaps and folds fall inside the working window.
NIGHT_SHIFT = WorkCalendar(
    timezone="Europe/Berlin", weekend=frozenset(), holidays={}, day_start=time(2, 30)
)


Wall = tuple[int, int, int, int, int]  # local year, month, day, hour, minute


def local(
    cal: WorkCalendar, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=cal.tz)


def in_zone(dt: datetime, cal: WorkCalendar) -> datetime:
    return dt.astimezone(cal.tz)


# --- add_business_days ---------------------------------------------------------------------

ADD_CASES = [
    # id, calendar, start (local), days, expected (local)
    ("fri-afternoon-keeps-wall-clock", BERLIN, (2026, 3, 6, 14, 2), 3, (2026, 3, 11, 14, 2)),
    ("fri-evening-counts-from-mon-9", BERLIN, (2026, 3, 6, 19, 0), 3, (2026, 3, 12, 9, 0)),
    ("sat-counts-from-mon-9", BERLIN, (2026, 3, 7, 11, 0), 1, (2026, 3, 10, 9, 0)),
    ("sat-plus-zero-is-mon-9", BERLIN, (2026, 3, 7, 11, 0), 0, (2026, 3, 9, 9, 0)),
    ("early-morning-same-day-9", BERLIN, (2026, 3, 9, 7, 30), 0, (2026, 3, 9, 9, 0)),
    ("day-start-is-inside", BERLIN, (2026, 3, 9, 9, 0), 1, (2026, 3, 10, 9, 0)),
    ("day-end-is-outside", BERLIN, (2026, 3, 6, 17, 0), 0, (2026, 3, 9, 9, 0)),
    ("zero-inside-hours-is-start", BERLIN, (2026, 3, 6, 14, 2), 0, (2026, 3, 6, 14, 2)),
    ("christmas-de", BERLIN, (2026, 12, 24, 14, 2), 1, (2026, 12, 28, 14, 2)),
    ("year-boundary-new-year", BERLIN, (2026, 12, 30, 10, 0), 2, (2027, 1, 4, 10, 0)),
    ("year-boundary-plain", PLAIN_BERLIN, (2026, 12, 31, 10, 0), 1, (2027, 1, 1, 10, 0)),
    ("thanksgiving-ca", LOS_ANGELES, (2026, 11, 25, 10, 0), 3, (2026, 12, 2, 10, 0)),
    ("thanksgiving-ny", NEW_YORK, (2026, 11, 25, 10, 0), 3, (2026, 12, 1, 10, 0)),
    ("israel-thu-plus-1-is-sun", ISRAEL, (2026, 3, 5, 14, 0), 1, (2026, 3, 8, 14, 0)),
    ("israel-fri-counts-from-sun", ISRAEL, (2026, 3, 6, 10, 0), 0, (2026, 3, 8, 9, 0)),
    ("leap-day-2028", LEAP, (2028, 2, 28, 14, 0), 1, (2028, 2, 29, 14, 0)),
    ("past-leap-day-2028", LEAP, (2028, 2, 28, 14, 0), 2, (2028, 3, 1, 14, 0)),
    ("apia-plus-13", APIA, (2026, 3, 6, 14, 0), 1, (2026, 3, 9, 14, 0)),
    # Samoa jumped the date line: Fri 2011-12-30 never happened there.
    ("apia-skipped-day-2011", APIA, (2011, 12, 29, 14, 0), 1, (2012, 1, 2, 14, 0)),
]


@pytest.mark.parametrize(
    ("cal", "start", "days", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in ADD_CASES],
)
def test_add_business_days(
    cal: WorkCalendar,
    start: Wall,
    days: int,
    expected: Wall,
) -> None:
    due = add_business_days(local(cal, *start), days, cal).due_at
    assert due.tzinfo is UTC
    assert in_zone(due, cal) == local(cal, *expected)


@pytest.mark.parametrize(
    ("cal", "start", "days", "skipped"),
    [
        pytest.param(
            BERLIN,
            (2026, 12, 24, 14, 2),
            1,
            ((date(2026, 12, 25), "Christmas Day"),),
            id="christmas-sat-26th-not-listed",
        ),
        pytest.param(
            BERLIN,
            (2026, 12, 30, 10, 0),
            2,
            ((date(2027, 1, 1), "New Year's Day"),),
            id="new-year",
        ),
        pytest.param(
            LOS_ANGELES,
            (2026, 11, 25, 10, 0),
            3,
            (
                (date(2026, 11, 26), "Thanksgiving Day"),
                (date(2026, 11, 27), "Day After Thanksgiving"),
            ),
            id="thanksgiving-ca",
        ),
        pytest.param(
            BERLIN,
            (2026, 12, 25, 10, 0),
            0,
            ((date(2026, 12, 25), "Christmas Day"),),
            id="start-on-holiday-is-listed",
        ),
        pytest.param(BERLIN, (2026, 3, 6, 14, 2), 3, (), id="plain-weekend-not-listed"),
    ],
)
def test_add_business_days_lists_skipped_holidays(
    cal: WorkCalendar,
    start: Wall,
    days: int,
    skipped: tuple[tuple[date, str], ...],
) -> None:
    assert add_business_days(local(cal, *start), days, cal).skipped == skipped


def test_thanksgiving_matches_holidays_package() -> None:
    expected = holidays.country_holidays("US", subdiv="CA", years=2026).get_nth_working_day(
        date(2026, 11, 25), 3
    )
    due = add_business_days(local(LOS_ANGELES, 2026, 11, 25, 10, 0), 3, LOS_ANGELES).due_at
    assert expected == date(2026, 12, 2) == in_zone(due, LOS_ANGELES).date()


@pytest.mark.parametrize(
    ("cal", "start", "expected", "offset_before", "offset_after"),
    [
        pytest.param(BERLIN, (2026, 3, 27, 14, 2), (2026, 3, 30, 14, 2), 1, 2, id="eu-2026-03-29"),
        pytest.param(
            NEW_YORK, (2026, 3, 6, 14, 2), (2026, 3, 9, 14, 2), -5, -4, id="us-2026-03-08"
        ),
    ],
)
def test_dst_switch_keeps_wall_clock(
    cal: WorkCalendar,
    start: Wall,
    expected: Wall,
    offset_before: int,
    offset_after: int,
) -> None:
    start_dt = local(cal, *start)
    due = add_business_days(start_dt, 1, cal).due_at
    assert start_dt.utcoffset() == timedelta(hours=offset_before)
    assert in_zone(due, cal).utcoffset() == timedelta(hours=offset_after)
    assert in_zone(due, cal).replace(tzinfo=None) == local(cal, *expected).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("start_utc", "days", "expected_utc"),
    [
        # Sun 2026-03-29 01:00 CET -> day_start 02:30 does not exist -> 03:30 CEST.
        pytest.param(
            datetime(2026, 3, 29, 0, 0, tzinfo=UTC),
            0,
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            id="gap-shifts-forward",
        ),
        pytest.param(
            datetime(2026, 3, 28, 1, 30, tzinfo=UTC),
            1,
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
            id="gap-wall-clock-kept",
        ),
        # Sun 2026-10-25 02:30 happens twice; fold=0 is the first (CEST) pass.
        pytest.param(
            datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
            1,
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            id="fold-takes-first",
        ),
        # Starting in the second pass keeps that very instant for days=0.
        pytest.param(
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            0,
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            id="fold-1-start-kept",
        ),
    ],
)
def test_dst_gap_and_fold(start_utc: datetime, days: int, expected_utc: datetime) -> None:
    assert add_business_days(start_utc, days, NIGHT_SHIFT).due_at == expected_utc


def test_start_in_any_zone_is_converted() -> None:
    # 13:02 UTC is Fri 14:02 in Berlin.
    due = add_business_days(datetime(2026, 3, 6, 13, 2, tzinfo=UTC), 3, BERLIN).due_at
    assert due == datetime(2026, 3, 11, 13, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(
            lambda: add_business_days(datetime(2026, 3, 6, 14), 1, BERLIN),
            "timezone-aware",
            id="naive",
        ),
        pytest.param(
            lambda: add_business_days(local(BERLIN, 2026, 3, 6), -1, BERLIN),
            "days must be >= 0",
            id="negative-days",
        ),
        pytest.param(
            lambda: add_business_hours(local(BERLIN, 2026, 3, 6), -1, BERLIN),
            "hours must be",
            id="negative-hours",
        ),
        pytest.param(
            lambda: add_business_hours(local(BERLIN, 2026, 3, 6), float("nan"), BERLIN),
            "hours must be",
            id="nan-hours",
        ),
        pytest.param(
            lambda: WorkCalendar(
                timezone="Europe/Berlin", weekend=frozenset(range(7)), holidays={}
            ),
            "all seven days",
            id="seven-day-weekend",
        ),
        pytest.param(
            lambda: WorkCalendar(timezone="Mars/Olympus", weekend=frozenset(), holidays={}),
            "unknown time zone",
            id="bad-zone",
        ),
        pytest.param(
            lambda: WorkCalendar(timezone="UTC", weekend=frozenset({7}), holidays={}),
            "weekday numbers",
            id="bad-weekday",
        ),
        pytest.param(
            lambda: WorkCalendar(
                timezone="UTC",
                weekend=frozenset(),
                holidays={},
                day_start=time(17),
                day_end=time(9),
            ),
            "must be before",
            id="inverted-hours",
        ),
    ],
)
def test_invalid_input_raises(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_endless_holidays_raise_instead_of_looping() -> None:
    first = date(2026, 1, 1)
    cal = WorkCalendar(
        timezone="UTC",
        weekend=frozenset({5, 6}),
        holidays={first + timedelta(days=i): "Strike" for i in range(MAX_NON_WORKING_RUN + 10)},
    )
    start = datetime(2025, 12, 31, 10, tzinfo=UTC)
    for call in (
        lambda: add_business_days(start, 1, cal),
        lambda: add_business_hours(start, 8, cal),
        lambda: next_working_moment(datetime(2026, 1, 1, tzinfo=UTC), cal),
    ):
        with pytest.raises(ValueError, match="no working day"):
            call()


def test_weekend_workdays_count() -> None:
    saturday = date(2026, 3, 7)
    cal = WorkCalendar(
        timezone="UTC",
        weekend=frozenset({5, 6}),
        holidays={},
        weekend_workdays=frozenset({saturday}),
    )
    due = add_business_days(datetime(2026, 3, 6, 10, tzinfo=UTC), 1, cal).due_at
    assert due == datetime(2026, 3, 7, 10, tzinfo=UTC)


# --- business_days_elapsed / next_working_moment --------------------------------------------


@pytest.mark.parametrize(
    ("start", "now", "elapsed"),
    [
        pytest.param((2026, 3, 6, 14, 2), (2026, 3, 11, 14, 1), 2, id="one-minute-short"),
        pytest.param((2026, 3, 6, 14, 2), (2026, 3, 11, 14, 2), 3, id="exactly-due"),
        pytest.param((2026, 3, 6, 14, 2), (2026, 3, 6, 14, 0), 0, id="now-before-start"),
        pytest.param((2026, 3, 6, 19, 0), (2026, 3, 9, 23, 0), 0, id="evening-start-mon-night"),
        pytest.param((2026, 3, 6, 19, 0), (2026, 3, 10, 9, 0), 1, id="evening-start-tue-9"),
        pytest.param((2026, 12, 23, 12, 0), (2026, 12, 28, 12, 0), 2, id="over-christmas"),
    ],
)
def test_business_days_elapsed(start: Wall, now: Wall, elapsed: int) -> None:
    assert business_days_elapsed(local(BERLIN, *start), local(BERLIN, *now), BERLIN) == elapsed


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param((2026, 3, 6, 14, 2), (2026, 3, 6, 14, 2), id="inside-hours"),
        pytest.param((2026, 3, 6, 19, 0), (2026, 3, 9, 9, 0), id="fri-evening"),
        pytest.param((2026, 3, 9, 8, 59), (2026, 3, 9, 9, 0), id="before-start"),
        pytest.param((2026, 12, 24, 18, 0), (2026, 12, 28, 9, 0), id="christmas-eve"),
    ],
)
def test_next_working_moment(at: Wall, expected: Wall) -> None:
    moment = next_working_moment(local(BERLIN, *at), BERLIN)
    assert moment.tzinfo is UTC
    assert moment == local(BERLIN, *expected)


# --- add_business_hours ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param((2026, 3, 6, 16, 30), 1, (2026, 3, 9, 9, 30), id="fri-1630-plus-1h"),
        pytest.param((2026, 3, 6, 16, 0), 1, (2026, 3, 6, 17, 0), id="ends-at-day-end"),
        pytest.param((2026, 3, 7, 12, 0), 1, (2026, 3, 9, 10, 0), id="saturday"),
        pytest.param((2026, 3, 9, 10, 0), 8, (2026, 3, 10, 10, 0), id="full-day"),
        pytest.param((2026, 3, 9, 10, 0), 0.25, (2026, 3, 9, 10, 15), id="fraction"),
        pytest.param((2026, 3, 9, 10, 0), 0, (2026, 3, 9, 10, 0), id="zero"),
        pytest.param((2026, 3, 9, 18, 0), 0, (2026, 3, 10, 9, 0), id="zero-after-hours"),
        pytest.param((2026, 12, 24, 16, 30), 1, (2026, 12, 28, 9, 30), id="over-christmas"),
    ],
)
def test_add_business_hours(start: Wall, hours: float, expected: Wall) -> None:
    due = add_business_hours(local(BERLIN, *start), hours, BERLIN)
    assert due.tzinfo is UTC
    assert due == local(BERLIN, *expected)


# --- describe_local -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dt", "cal", "text"),
    [
        pytest.param(
            datetime(2026, 3, 6, 13, 2, tzinfo=UTC),
            BERLIN,
            "Fri 6 Mar 14:02 Europe/Berlin",
            id="berlin",
        ),
        pytest.param(
            datetime(2026, 3, 6, 23, 30, tzinfo=UTC),
            ISRAEL,
            "Sat 7 Mar 01:30 Asia/Jerusalem",
            id="crosses-midnight",
        ),
        pytest.param(
            datetime(2026, 3, 6, 1, 0, tzinfo=UTC), APIA, "Fri 6 Mar 14:00 Pacific/Apia", id="apia"
        ),
    ],
)
def test_describe_local(dt: datetime, cal: WorkCalendar, text: str) -> None:
    assert describe_local(dt, cal) == text


# --- app.calendars adapter ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "subdiv", "weekend"),
    [
        pytest.param("DE", "BE", {5, 6}, id="de"),
        pytest.param("IL", None, {4, 5}, id="israel"),
        pytest.param("il", None, {4, 5}, id="lower-case-code"),
        # `.weekend` says Sat/Sun here, but Kedah rests Fri/Sat (holidays' is_weekend knows).
        pytest.param("MY", "02", {4, 5}, id="malaysia-kedah"),
        pytest.param(None, None, {5, 6}, id="no-country"),
    ],
)
def test_work_calendar_weekend(country: str | None, subdiv: str | None, weekend: set[int]) -> None:
    cal = work_calendar(timezone="UTC", country=country, subdiv=subdiv, years=[2026])
    assert cal.weekend == weekend


@pytest.mark.parametrize(
    ("country", "subdiv", "years"),
    [
        pytest.param("DE", "BE", [2026, 2027], id="de-be"),
        pytest.param("US", "CA", [2026], id="us-ca"),
        pytest.param("CN", None, [2026], id="cn-make-up-saturdays"),
        pytest.param("AE", None, [2021, 2022], id="ae-weekend-moved-2022"),
    ],
)
def test_work_calendar_agrees_with_holidays_package(
    country: str, subdiv: str | None, years: list[int]
) -> None:
    cal = work_calendar(timezone="UTC", country=country, subdiv=subdiv, years=years)
    reference = holidays.country_holidays(country, subdiv=subdiv, years=years)
    days = [date(years[0], 1, 1) + timedelta(days=i) for i in range(365 * len(years))]
    assert [d for d in days if cal.is_working_day(d) != reference.is_working_day(d)] == []


def test_work_calendar_no_country_has_no_holidays() -> None:
    cal = work_calendar(timezone="Europe/Berlin", country=None, years=[2026])
    assert dict(cal.holidays) == {}
    assert cal.is_working_day(date(2026, 12, 25))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"timezone": "UTC", "country": "XX"}, "unknown country", id="country"),
        pytest.param(
            {"timezone": "UTC", "country": "US", "subdiv": "ZZ"}, "unknown country", id="subdiv"
        ),
        pytest.param(
            {"timezone": "Europe/Nowhere", "country": "DE"}, "unknown time zone", id="zone"
        ),
        pytest.param(
            {"timezone": "Europe", "country": None}, "unknown time zone", id="zone-directory"
        ),
    ],
)
def test_work_calendar_rejects_unknown_codes(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        work_calendar(years=[2026], **kwargs)  # type: ignore[arg-type]


def test_work_calendar_rejects_empty_years() -> None:
    with pytest.raises(ValueError, match="years"):
        work_calendar(timezone="UTC", country="DE", years=[])


# --- properties -----------------------------------------------------------------------------

CALENDARS = [BERLIN, NEW_YORK, ISRAEL, APIA, NIGHT_SHIFT]
calendars = st.sampled_from(CALENDARS)
instants = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 11, 30), timezones=st.just(UTC)
)


@settings(database=None, deadline=None)
@given(cal=calendars, start=instants, days=st.integers(0, 25))
def test_due_is_not_before_start_and_grows_with_days(
    cal: WorkCalendar, start: datetime, days: int
) -> None:
    due = add_business_days(start, days, cal).due_at
    later = add_business_days(start, days + 1, cal).due_at
    assert start <= due < later
    assert cal.day_start <= in_zone(due, cal).time() < cal.day_end or cal is NIGHT_SHIFT


@settings(database=None, deadline=None)
@given(cal=calendars, start=instants, gap=st.timedeltas(timedelta(0), timedelta(days=40)))
def test_elapsed_is_consistent_with_add(cal: WorkCalendar, start: datetime, gap: timedelta) -> None:
    now = start + gap
    elapsed = business_days_elapsed(start, now, cal)
    if elapsed >= 1:
        assert add_business_days(start, elapsed, cal).due_at <= now
    assert add_business_days(start, elapsed + 1, cal).due_at > now


@settings(database=None, deadline=None)
@given(cal=calendars, start=instants, hours=st.floats(0, 100))
def test_business_hours_are_not_before_start(
    cal: WorkCalendar, start: datetime, hours: float
) -> None:
    due = add_business_hours(start, hours, cal)
    assert due >= next_working_moment(start, cal) == add_business_days(start, 0, cal).due_at
    assert due >= start


@settings(database=None, deadline=None)
@given(cal=calendars, start=instants, days=st.integers(0, 25))
def test_memoized_day_arithmetic_matches_a_fresh_calendar(
    cal: WorkCalendar, start: datetime, days: int
) -> None:
    """A calendar memoizes its day facts and (date, n) steps; the shared calendars above are
    warm from every other test, a copy starts empty: both must give the same spans."""
    fresh = dataclasses.replace(cal)
    assert fresh == cal
    for _ in range(2):  # the second call answers from the memo
        assert add_business_days(start, days, cal) == add_business_days(start, days, fresh)
    assert describe_local(start, cal) == describe_local(start, fresh)


def test_business_days_elapsed_counts_like_adding_them_whatever_the_order_asked() -> None:
    """The running count behind business_days_elapsed gives the same answers whether the
    threads come oldest first, newest first, or years apart (and at the calendar's ends)."""
    cal = WorkCalendar(timezone="Europe/Berlin", weekend=frozenset({5, 6}))
    now = datetime(2026, 12, 14, 10, 0, tzinfo=UTC)
    starts = [now - timedelta(days=d, hours=h) for d in (400, 3, 90, 1, 30, 700) for h in (0, 5)]
    expected = []
    for start in starts:
        n = 0
        while add_business_days(start, n + 1, cal).due_at <= now:
            n += 1
        expected.append(n)
    fresh = WorkCalendar(timezone="Europe/Berlin", weekend=frozenset({5, 6}))
    assert [business_days_elapsed(s, now, fresh) for s in starts] == expected
    ancient = datetime(1, 1, 3, 12, 0, tzinfo=UTC)
    assert business_days_elapsed(ancient, datetime(1, 1, 10, tzinfo=UTC), fresh) >= 1


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Jerusalem"])
def test_the_next_business_day_completes_exactly_when_the_count_grows(zone: str) -> None:
    weekend = frozenset({4, 5}) if zone == "Asia/Jerusalem" else frozenset({5, 6})
    cal = WorkCalendar(timezone=zone, weekend=weekend, holidays={date(2026, 3, 30): "A day"})
    start = datetime(2026, 3, 20, 15, 30, tzinfo=UTC)  # across a DST switch in each zone
    now = start - timedelta(hours=30)
    for _ in range(15):
        mark = next_business_day_completes(start, now, cal)
        before = business_days_elapsed(start, mark - timedelta(microseconds=1), cal)
        assert mark > now
        assert business_days_elapsed(start, mark, cal) == before + 1
        assert business_days_elapsed(start, now, cal) == before
        now = mark
