"""Builds `WorkCalendar`s from the `holidays` package (the domain layer never imports it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import lru_cache

import holidays

from app.domain.worktime import WorkCalendar

DEFAULT_WEEKEND = frozenset({5, 6})  # only for country=None; countries bring their own
# Rest days that exist only because a country's weekend changed between the requested years.
OLD_WEEKEND_NAME = "Weekend"


@dataclass(frozen=True)
class _YearTable:
    year: int
    names: tuple[tuple[date, str], ...]
    non_working: frozenset[date]
    weekend: frozenset[int]


def work_calendar(
    *,
    timezone: str,
    country: str | None,
    subdiv: str | None = None,
    years: Iterable[int],
    day_start: time = time(9, 0),
    day_end: time = time(17, 0),
    language: str | None = "en_US",
) -> WorkCalendar:
    """Calendar for `country`/`subdiv` (ISO 3166 codes, e.g. "US"/"CA") covering `years`.

    `language` pins holiday names; with None the `holidays` package would guess from the
    process locale, so names would differ between machines.
    """
    wanted = sorted(set(years))
    if not wanted:
        raise ValueError("years must not be empty")
    if country is None:
        return WorkCalendar(
            timezone=timezone, weekend=DEFAULT_WEEKEND, day_start=day_start, day_end=day_end
        )
    tables = [_year_table(country.upper(), subdiv, year, language) for year in wanted]
    # The latest year's weekend is the one that matters for deadlines; older requested years
    # whose weekend differed are expressed as per-date exceptions below.
    weekend = tables[-1].weekend
    names: dict[date, str] = {}
    weekend_workdays: set[date] = set()
    for table in tables:
        names.update(table.names)
        for day in _days_of(table.year):
            working = day not in table.non_working
            if working and day.weekday() in weekend:
                weekend_workdays.add(day)
            elif not working and day.weekday() not in weekend:
                names.setdefault(day, OLD_WEEKEND_NAME)
    return WorkCalendar(
        timezone=timezone,
        weekend=weekend,
        holidays=names,
        day_start=day_start,
        day_end=day_end,
        weekend_workdays=frozenset(weekend_workdays),
    )


@lru_cache(maxsize=256)
def _year_table(country: str, subdiv: str | None, year: int, language: str | None) -> _YearTable:
    try:
        table = holidays.country_holidays(country, subdiv=subdiv, years=year, language=language)
    except NotImplementedError as exc:  # what `holidays` raises for unknown codes
        raise ValueError(f"unknown country/subdivision {country!r}/{subdiv!r}: {exc}") from exc
    days = _days_of(year)
    # Ask `is_weekend` per date instead of reading `.weekend`: some entities override the
    # weekend per date or subdivision (MY-02 Kedah rests Fri/Sat while `.weekend` says Sat/Sun).
    weekend_votes = Counter(day.weekday() for day in days if table.is_weekend(day))
    return _YearTable(
        year=year,
        names=tuple(sorted((day, name) for day, name in table.items() if day.year == year)),
        non_working=frozenset(day for day in days if not table.is_working_day(day)),
        weekend=frozenset(wd for wd, votes in weekend_votes.items() if votes > 26),  # majority
    )


def _days_of(year: int) -> list[date]:
    first = date(year, 1, 1)
    return [first + timedelta(days=i) for i in range((date(year + 1, 1, 1) - first).days)]


@lru_cache(maxsize=1)
def _supported_countries() -> frozenset[str]:
    return frozenset(holidays.list_supported_countries())


def validate_country(country: str | None, subdiv: str | None = None) -> str | None:
    """The upper-cased country code, or a ValueError-free InvalidInput naming what is wrong."""
    from app.errors import InvalidInput

    if country is None or not country.strip():
        if subdiv:
            raise InvalidInput("holiday_subdiv needs holiday_country")
        return None
    code = country.strip().upper()
    try:
        # `holidays` looks codes up as module attributes: "SEP" is its month constant, so
        # only the codes it lists as countries may reach it.
        if code not in _supported_countries():
            raise ValueError(code)
        _year_table(code, subdiv, date.today().year, "en_US")
    except ValueError:
        raise InvalidInput(
            f"unknown holiday_country/holiday_subdiv {country!r}/{subdiv!r}: use an ISO 3166 "
            "code such as 'DE' or 'US' (and a subdivision such as 'CA')"
        ) from None
    return code
