"""A mailbox's rules as stored JSON (mailboxes.rules) and back. Missing keys take the defaults,
so a mailbox created before a rule existed keeps working."""

from __future__ import annotations

from datetime import date, time
from typing import TypedDict

from app.domain.model import Rules, TimeOff

_DEFAULTS = Rules()


class WorkingHoursJson(TypedDict, total=False):
    start: str  # HH:MM
    end: str


class TimeOffJson(TypedDict):
    start: str  # ISO date
    end: str


class RulesJson(TypedDict, total=False):
    """The stored shape (mailboxes.rules), which the API shows too: any key may be missing
    (it takes its default), and a row edited by hand may hold anything, so it is checked."""

    wait_business_days: int
    cadence_business_days: list[int]
    max_followups: int
    auto_reply_pause_business_days: int
    response_time_business_hours: float
    working_hours: WorkingHoursJson
    time_off: list[TimeOffJson]


def rules_from_dict(data: RulesJson | None) -> Rules:
    """Stored JSON -> Rules. Raises ValueError (with the field's name) on values that the API
    would have refused, so a hand-edited row fails loudly instead of deciding wrongly."""
    data = data or {}
    try:
        hours = data.get("working_hours") or {}
        return Rules(
            wait_business_days=int(data.get("wait_business_days", _DEFAULTS.wait_business_days)),
            cadence_business_days=tuple(
                int(d) for d in data.get("cadence_business_days", _DEFAULTS.cadence_business_days)
            ),
            max_followups=int(data.get("max_followups", _DEFAULTS.max_followups)),
            auto_reply_pause_business_days=int(
                data.get("auto_reply_pause_business_days", _DEFAULTS.auto_reply_pause_business_days)
            ),
            response_time_business_hours=float(
                data.get("response_time_business_hours", _DEFAULTS.response_time_business_hours)
            ),
            work_day_start=_time(hours.get("start"), _DEFAULTS.work_day_start),
            work_day_end=_time(hours.get("end"), _DEFAULTS.work_day_end),
            time_off=tuple(
                TimeOff(start=date.fromisoformat(t["start"]), end=date.fromisoformat(t["end"]))
                for t in data.get("time_off", ())
            ),
        )
    except (TypeError, KeyError) as exc:
        raise ValueError(f"stored rules are malformed: {exc!r}") from exc


def rules_to_dict(rules: Rules) -> RulesJson:
    """Rules -> the JSON the API shows and the database stores."""
    return {
        "wait_business_days": rules.wait_business_days,
        "cadence_business_days": list(rules.cadence_business_days),
        "max_followups": rules.max_followups,
        "auto_reply_pause_business_days": rules.auto_reply_pause_business_days,
        "response_time_business_hours": rules.response_time_business_hours,
        "working_hours": {
            "start": rules.work_day_start.strftime("%H:%M"),
            "end": rules.work_day_end.strftime("%H:%M"),
        },
        "time_off": [
            {"start": t.start.isoformat(), "end": t.end.isoformat()} for t in rules.time_off
        ],
    }


def _time(value: str | None, default: time) -> time:
    return time.fromisoformat(value) if value else default
