"""A mailbox's rules as the API and the pages take and show them. Built from the domain:
every default comes from `Rules()` and every bound from `RULE_LIMITS`, so that the schema
cannot drift from what `decide()` accepts (tests/unit/test_rules_schema.py holds them
together)."""

from __future__ import annotations

from datetime import date, time
from typing import Annotated

from pydantic import Field, model_validator

from app.domain.model import RULE_LIMITS, Bounds, Rules, TimeOff
from app.errors import InvalidInput
from app.services.bodies import Strict

DEFAULTS = Rules()
_L = RULE_LIMITS


# Bounds as pydantic's keywords: gt or ge (the other None), and le.
def _gt(bounds: Bounds) -> float | None:
    return bounds.low if bounds.low_open else None


def _ge(bounds: Bounds) -> float | None:
    return None if bounds.low_open else bounds.low


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


_DAYS = _L.wait_days
WaitDays = Annotated[
    int,
    Field(
        gt=_whole(_gt(_DAYS)),
        ge=_whole(_ge(_DAYS)),
        le=int(_DAYS.high),
        description="business days",
    ),
]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


class WorkingHours(Strict):
    start: str = Field(
        _hhmm(DEFAULTS.work_day_start), pattern=_HHMM, description="local time, HH:MM"
    )
    end: str = Field(_hhmm(DEFAULTS.work_day_end), pattern=_HHMM, description="local time, HH:MM")

    @model_validator(mode="after")
    def _start_before_end(self) -> WorkingHours:
        if self.start >= self.end:
            raise ValueError(
                f"working_hours: start {self.start} must be before end {self.end} (same day)"
            )
        return self


class TimeOffRange(Strict):
    start: date = Field(description="first day away (the mailbox's time zone)")
    end: date = Field(description="last day away, inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> TimeOffRange:
        years = _L.time_off_years
        if self.end < self.start:
            raise ValueError(f"time_off: end {self.end} is before start {self.start}")
        if (self.end - self.start).days > _L.time_off_days:
            raise ValueError("time_off: one range may last at most a year")
        if not (years.holds(self.start.year) and years.holds(self.end.year)):
            raise ValueError(
                f"time_off: dates must lie between the years {years.low:g} and {years.high:g}"
            )
        return self


class RulesBody(Strict):
    """A mailbox's rules. PUT replaces them all: a field left out takes its default."""

    wait_business_days: WaitDays = Field(
        DEFAULTS.wait_business_days, description="wait after your e-mail before quiet"
    )
    cadence_business_days: list[WaitDays] = Field(
        default_factory=lambda: list(DEFAULTS.cadence_business_days),
        min_length=int(_L.cadence_steps.low),
        max_length=int(_L.cadence_steps.high),
        description="wait after follow-up 1, 2, …; the last value repeats",
    )
    max_followups: int = Field(
        DEFAULTS.max_followups,
        gt=_whole(_gt(_L.max_followups)),
        ge=_whole(_ge(_L.max_followups)),
        le=int(_L.max_followups.high),
        description="then the thread closes",
    )
    auto_reply_pause_business_days: WaitDays = Field(
        DEFAULTS.auto_reply_pause_business_days,
        description="pause after an auto-reply without a return date",
    )
    response_time_business_hours: float = Field(
        DEFAULTS.response_time_business_hours,
        gt=_gt(_L.response_time_hours),
        ge=_ge(_L.response_time_hours),
        le=_L.response_time_hours.high,
        description="you owe an answer after this long",
    )
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    time_off: list[TimeOffRange] = Field(
        default_factory=list,
        max_length=_L.time_off_ranges,
        description="days you are away: no drafts",
    )

    def to_rules(self) -> Rules:
        """The domain's rules; what the schema cannot see (none today) becomes a 422."""
        try:
            return Rules(
                wait_business_days=self.wait_business_days,
                cadence_business_days=tuple(self.cadence_business_days),
                max_followups=self.max_followups,
                auto_reply_pause_business_days=self.auto_reply_pause_business_days,
                response_time_business_hours=self.response_time_business_hours,
                work_day_start=time.fromisoformat(self.working_hours.start),
                work_day_end=time.fromisoformat(self.working_hours.end),
                time_off=tuple(TimeOff(start=t.start, end=t.end) for t in self.time_off),
            )
        except ValueError as exc:
            raise InvalidInput(f"invalid rules: {exc}") from None

    @classmethod
    def of(cls, rules: Rules) -> RulesBody:
        return cls(
            wait_business_days=rules.wait_business_days,
            cadence_business_days=list(rules.cadence_business_days),
            max_followups=rules.max_followups,
            auto_reply_pause_business_days=rules.auto_reply_pause_business_days,
            response_time_business_hours=rules.response_time_business_hours,
            working_hours=WorkingHours(
                start=_hhmm(rules.work_day_start), end=_hhmm(rules.work_day_end)
            ),
            time_off=[TimeOffRange(start=t.start, end=t.end) for t in rules.time_off],
        )
