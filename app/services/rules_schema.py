"""A mailbox's rules as the API and the pages take and show them: below both faces, so
neither imports the other."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import Field, model_validator

from app.services.bodies import Strict

WaitDays = Annotated[int, Field(ge=1, le=60, description="business days")]
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class WorkingHours(Strict):
    start: str = Field("09:00", pattern=_HHMM, description="local time, HH:MM")
    end: str = Field("17:00", pattern=_HHMM, description="local time, HH:MM")

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
        if self.end < self.start:
            raise ValueError(f"time_off: end {self.end} is before start {self.start}")
        if (self.end - self.start).days > 366:
            raise ValueError("time_off: one range may last at most a year")
        if self.start.year < 2000 or self.end.year > 2100:
            raise ValueError("time_off: dates must lie between the years 2000 and 2100")
        return self


class RulesBody(Strict):
    """A mailbox's rules. PUT replaces them all: a field left out takes its default."""

    wait_business_days: WaitDays = Field(3, description="wait after your e-mail before quiet")
    cadence_business_days: list[WaitDays] = Field(
        default_factory=lambda: [3, 5, 7],
        min_length=1,
        max_length=10,
        description="wait after follow-up 1, 2, …; the last value repeats",
    )
    max_followups: int = Field(3, ge=0, le=10, description="then the thread closes")
    auto_reply_pause_business_days: WaitDays = Field(
        5, description="pause after an auto-reply without a return date"
    )
    response_time_business_hours: float = Field(
        1.0, gt=0, le=40, description="you owe an answer after this long"
    )
    working_hours: WorkingHours = Field(default_factory=WorkingHours)
    time_off: list[TimeOffRange] = Field(
        default_factory=list, max_length=100, description="days you are away: no drafts"
    )
