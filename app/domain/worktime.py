"""Business-time arithmetic: "quiet for N business days", "respond within one business hour".

Pure domain code: stdlib only, no clock reads. Holiday data is passed in via `WorkCalendar`
(see `app.calendars` for the adapter that builds it from the `holidays` package).

Day counting is done on *local* dates and keeps the local wall-clock time, so "Fri 14:02 + 3"
is "Wed 14:02" even across a DST switch; only the final conversion to UTC sees the offset.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.domain.model import cheap_init

# Longest run of non-working days we accept before declaring the calendar broken.
MAX_NON_WORKING_RUN = 366 * 2
# Entries a calendar's memo holds before it starts again (a bound on memory, not a tuning knob).
_MEMO_LIMIT = 50_000
_RANK_MARGIN = 120  # days added around a requested range of the running count of workdays


@dataclass(frozen=True, kw_only=True)
class WorkCalendar:
    timezone: str
    """IANA zone name, e.g. "Europe/Berlin"."""
    weekend: frozenset[int]
    """`date.weekday()` numbers: {5, 6} for Sat/Sun, {4, 5} for Fri/Sat (Israel)."""
    holidays: Mapping[date, str] = field(default_factory=dict)
    """date -> holiday name, already expanded for the years needed."""
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    weekend_workdays: frozenset[date] = frozenset()
    """Weekend dates that are working days anyway (make-up days, e.g. in CN or TW)."""
    # Derived once per calendar, not part of its value: the zone, and memos of day facts and
    # of day arithmetic. A calendar is reused for every thread of a batch (and across
    # batches), so the scheduler pays for each (date, n) once, not once per thread.
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _working: dict[date, bool] = field(init=False, repr=False, compare=False)
    _spans: dict[tuple[date, int], tuple[date, tuple[tuple[date, str], ...]]] = field(
        init=False, repr=False, compare=False
    )
    # Working days counted from a first date: _ranks[0][i] = working days in
    # (_ranks[1], _ranks[1] + i days]. Lets "how many business days since" answer in O(1).
    _ranks: list[Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Fail at construction, not deep inside a scan.
        object.__setattr__(self, "_tz", _zone(self.timezone))
        object.__setattr__(self, "_working", {})
        object.__setattr__(self, "_spans", {})
        object.__setattr__(self, "_ranks", [[], date.min])
        if not all(0 <= day <= 6 for day in self.weekend):
            raise ValueError(f"weekend must hold weekday numbers 0..6, got {sorted(self.weekend)}")
        if len(self.weekend) == 7 and not self.weekend_workdays:
            raise ValueError("weekend covers all seven days: there are no working days")
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start/day_end are local wall-clock times and must be naive")
        if self.day_start >= self.day_end:
            raise ValueError(f"day_start {self.day_start} must be before day_end {self.day_end}")
        # Defensive copies: the calendar is frozen, so the caller's dict must not leak in.
        object.__setattr__(self, "weekend", frozenset(self.weekend))
        object.__setattr__(self, "weekend_workdays", frozenset(self.weekend_workdays))
        object.__setattr__(self, "holidays", MappingProxyType(dict(self.holidays)))

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def is_working_day(self, d: date) -> bool:
        """Same rule as `holidays.HolidayBase.is_working_day`, plus: a local date that does
        not exist in the zone (Pacific/Apia skipped 2011-12-30) is not a working day."""
        working = self._working.get(d)
        if working is None:
            if len(self._working) >= _MEMO_LIMIT:
                self._working.clear()
            working = self._working[d] = self._is_working_day(d)
        return working

    def _is_working_day(self, d: date) -> bool:
        if d in self.weekend_workdays:
            working = True
        elif d.weekday() in self.weekend:
            working = False
        else:
            working = d not in self.holidays
        return working and _date_exists(d, self._tz)

    def skipped_holiday(self, d: date) -> str | None:
        """Name of the holiday that makes an otherwise working weekday non-working."""
        if d.weekday() in self.weekend or d in self.weekend_workdays:
            return None
        return self.holidays.get(d)


@cheap_init  # one per waiting thread the rules decide on
@dataclass(frozen=True, kw_only=True)
class BusinessSpan:
    due_at: datetime
    """Aware, UTC."""
    skipped: tuple[tuple[date, str], ...]
    """Holidays on weekdays that were skipped (weekends are not listed), in date order."""


def add_business_days(start: datetime, days: int, cal: WorkCalendar) -> BusinessSpan:
    """When the clock that starts at `start` has run for `days` business days.

    Outside working time the clock starts at the next day_start, so Fri 19:00 + 3 is
    Thu 09:00; inside, the local wall-clock time is kept: Fri 14:02 + 3 is Wed 14:02.
    `skipped` also lists holidays passed while moving the start to the next working day.
    """
    if days < 0:
        raise ValueError(f"days must be >= 0, got {days}")
    skipped: list[tuple[date, str]] = []
    first, wall, fold = _normalize(start, cal, skipped)
    day, passed = _add_working_days(first, days, cal)
    return BusinessSpan(
        due_at=_to_utc(day, wall, cal.tz, fold if days == 0 else 0),
        skipped=(*skipped, *passed) if skipped else passed,
    )


def _add_working_days(
    day: date, days: int, cal: WorkCalendar
) -> tuple[date, tuple[tuple[date, str], ...]]:
    """The `days`-th working day after `day`, and the weekday holidays passed on the way
    (memoized per calendar: the answer depends on the calendar and the two arguments only)."""
    key = (day, days)
    span = cal._spans.get(key)
    if span is None:
        skipped: list[tuple[date, str]] = []
        end = day
        for _ in range(days):
            end = _next_working_day(end, cal, skipped)
        if len(cal._spans) >= _MEMO_LIMIT:
            cal._spans.clear()
        span = cal._spans[key] = (end, tuple(skipped))
    return span


def business_days_elapsed(start: datetime, now: datetime, cal: WorkCalendar) -> int:
    """Whole business days completed between `start` and `now`.

    For n >= 1: `business_days_elapsed(s, now) >= n` iff
    `now >= add_business_days(s, n).due_at`. Returns 0 if `now` precedes the start.
    """
    return elapsed_and_next(start, now, cal)[0]


def next_business_day_completes(start: datetime, now: datetime, cal: WorkCalendar) -> datetime:
    """When `business_days_elapsed(start, ·)` next grows by one after `now` (aware UTC)."""
    return elapsed_and_next(start, now, cal)[1]


def elapsed_and_next(start: datetime, now: datetime, cal: WorkCalendar) -> tuple[int, datetime]:
    """Both of the above with one look at the calendar (the scheduler asks for both for
    every quiet thread): the business days completed, and when the next one completes —
    the start's wall time on the next working day that has not reached it yet."""
    now_utc = _require_aware(now, "now").astimezone(UTC)
    first, wall, _ = _normalize(start, cal, None)
    today = now_utc.astimezone(cal.tz).date()
    if today <= first:
        return 0, _to_utc(_next_working_day(first, cal, None), wall, cal.tz)
    # Every working day after `first` and before today has passed at `wall`; today has
    # passed only once its wall time has.
    elapsed = _working_days_between(first, today, cal)
    if cal.is_working_day(today):
        mark = _to_utc(today, wall, cal.tz)
        if mark > now_utc:
            return elapsed - 1, mark
    return elapsed, _to_utc(_next_working_day(today, cal, None), wall, cal.tz)


def _shifted(d: date, days: int) -> date:
    """`d` moved by `days`, stopping at the ends of the calendar (a Date header of year 1)."""
    try:
        return d + timedelta(days=days)
    except OverflowError:
        return date.min if days < 0 else date.max


def _working_days_between(first: date, last: date, cal: WorkCalendar) -> int:
    """Working days in (first, last], from the calendar's running count (built once per
    range of dates, then read in O(1): lists of threads ask this for every row)."""
    counts, origin = cal._ranks
    if not counts or first < origin or (last - origin).days >= len(counts):
        # Grown with a margin on both sides, so that a batch of threads started on many
        # different days rebuilds it a few times, not once per thread.
        low = _shifted(first, -_RANK_MARGIN)
        high = _shifted(last, _RANK_MARGIN)
        if counts:
            low, high = min(low, origin), max(high, origin + timedelta(days=len(counts) - 1))
        origin, span = low, (high - low).days
        if span > MAX_NON_WORKING_RUN * 4:  # far apart: count directly, keep the memo
            return sum(
                cal.is_working_day(first + timedelta(days=i))
                for i in range(1, (last - first).days + 1)
            )
        counts, running = [0], 0
        for i in range(1, span + 1):
            running += cal.is_working_day(origin + timedelta(days=i))
            counts.append(running)
        cal._ranks[:] = [counts, origin]
    return int(counts[(last - origin).days] - counts[(first - origin).days])


def next_working_moment(at: datetime, cal: WorkCalendar) -> datetime:
    """`at` (as UTC) if it is within working hours, else the next day_start (aware UTC)."""
    day, wall, fold = _normalize(at, cal, None)
    return _to_utc(day, wall, cal.tz, fold)


def add_business_hours(start: datetime, hours: float, cal: WorkCalendar) -> datetime:
    """`start` plus `hours` of working time (aware UTC): Fri 16:30 + 1h is Mon 09:30.

    Hours are real elapsed time, so a working day that contains a DST switch is an hour
    longer or shorter. Landing exactly on day_end returns day_end, not the next morning.
    """
    if not math.isfinite(hours) or hours < 0:
        raise ValueError(f"hours must be a finite number >= 0, got {hours}")
    remaining = timedelta(hours=hours)
    day, wall, fold = _normalize(start, cal, None)
    cursor = _to_utc(day, wall, cal.tz, fold)
    while True:
        # max(): a wall-clock window can collapse if a DST switch sits right on its edge.
        available = max(_to_utc(day, cal.day_end, cal.tz) - cursor, timedelta(0))
        if remaining <= available:
            return cursor + remaining
        remaining -= available
        day = _next_working_day(day, cal, None)
        cursor = _to_utc(day, cal.day_start, cal.tz)


def describe_local(dt: datetime, cal: WorkCalendar) -> str:
    """Human-readable local time for reasons shown to users, with its full date (a bare
    weekday is ambiguous a week later): "Fri 6 Nov 14:02 Europe/Berlin"."""
    local = _require_aware(dt, "dt").astimezone(cal.tz)
    # Fixed English day names: strftime("%a") would follow the process locale.
    return f"{day_label(local.date())} {local.hour:02d}:{local.minute:02d} {cal.timezone}"


def day_label(d: date) -> str:
    """ "Mon 23 Nov": a full date as reasons and pages show it, whatever the process locale."""
    return f"{_DAY_NAMES[d.weekday()]} {d.day} {_MONTH_NAMES[d.month - 1]}"


_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def short_date(d: date) -> str:
    """ "Mon 02 Jan", in English whatever the process locale (strftime would follow it)."""
    return f"{_DAY_NAMES[d.weekday()]} {d.day:02d} {_MONTH_NAMES[d.month - 1]}"


def _normalize(
    at: datetime, cal: WorkCalendar, skipped: list[tuple[date, str]] | None
) -> tuple[date, time, int]:
    """Local (date, wall time, fold) at which the clock starts: `at` itself inside working
    hours, otherwise day_start of the same or next working day. The fold is kept only for
    `at` itself, so its second pass through a repeated DST hour maps back to `at`."""
    local = _require_aware(at, "start").astimezone(cal.tz)
    day, wall = local.date(), local.time()  # .time() drops tzinfo and fold
    if cal.is_working_day(day):
        if wall < cal.day_start:
            return day, cal.day_start, 0
        if wall < cal.day_end:
            return day, wall, local.fold
    elif skipped is not None and (name := cal.skipped_holiday(day)) is not None:
        skipped.append((day, name))
    return _next_working_day(day, cal, skipped), cal.day_start, 0


def _next_working_day(day: date, cal: WorkCalendar, skipped: list[tuple[date, str]] | None) -> date:
    if skipped is None:  # the plain question, asked for every quiet thread: memoized
        return _add_working_days(day, 1, cal)[0]
    return next(_working_days_after(day, cal, skipped))


def _working_days_after(
    day: date, cal: WorkCalendar, skipped: list[tuple[date, str]] | None
) -> Iterator[date]:
    """Working days strictly after `day`, recording skipped weekday holidays on the way."""
    while True:
        for _ in range(MAX_NON_WORKING_RUN):
            day += timedelta(days=1)
            if cal.is_working_day(day):
                break
            if skipped is not None and (name := cal.skipped_holiday(day)) is not None:
                skipped.append((day, name))
        else:
            raise ValueError(
                f"no working day within {MAX_NON_WORKING_RUN} days after "
                f"{day - timedelta(days=MAX_NON_WORKING_RUN)}: check weekend and holidays"
            )
        yield day


def _to_utc(day: date, wall: time, tz: ZoneInfo, fold: int = 0) -> datetime:
    # fold=0 resolves both DST edge cases as wanted: an ambiguous wall time means its first
    # occurrence, and a nonexistent one is read with the pre-gap offset, which lands
    # `gap` later on the wall clock (Berlin 02:30 on spring-forward day -> 03:30 CEST).
    # (Positional arguments, and no .replace() when the fold is already right: keyword
    # arguments make these C calls several times slower, and the scheduler makes many.)
    if wall.fold != fold:
        wall = wall.replace(fold=fold)
    return datetime.combine(day, wall, tz).astimezone(UTC)


@lru_cache(maxsize=4096)
def _date_exists(d: date, tz: ZoneInfo) -> bool:
    """False only for local dates a zone skipped entirely (date-line moves)."""
    return any(
        _to_utc(d, wall, tz).astimezone(tz).date() == d for wall in (time(0), time(23, 59, 59))
    )


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a directory
        raise ValueError(f"unknown time zone {name!r}") from exc


def _require_aware(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {dt.isoformat()}")
    return dt
