"""Replay the rules over stored mail, day by day, to see how often "quiet" was a false alarm.

At the end of each day (in the mailbox's zone) every thread is decided from the messages
dated before that moment only. A thread is *flagged* on the day it turns quiet; the flag was
a *false alarm* when the prospect answered later anyway. Pure: the caller loads the mail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from app.domain.model import MessageKind, Rules, ThreadHistory, ThreadMessage, ThreadState
from app.domain.rules import decide
from app.domain.worktime import WorkCalendar


@dataclass(frozen=True, kw_only=True)
class Flag:
    thread: int  # the thread's id
    day: date  # the local day at whose end the thread was quiet
    step: int  # the follow-up that would have been due
    answered_at: datetime | None  # the prospect's first reply after the flag, if any

    @property
    def false_alarm(self) -> bool:
        return self.answered_at is not None


@dataclass(frozen=True, kw_only=True)
class Backtest:
    first_day: date
    last_day: date
    threads: int
    flags: tuple[Flag, ...]

    @property
    def threads_flagged(self) -> int:
        return len({f.thread for f in self.flags})

    @property
    def threads_answered_later(self) -> int:
        return len({f.thread for f in self.flags if f.false_alarm})

    @property
    def false_alarm_rate(self) -> float:
        flagged = self.threads_flagged
        return self.threads_answered_later / flagged if flagged else 0.0


def replay(
    threads: Mapping[int, Sequence[ThreadMessage]],
    rules: Rules,
    calendar: WorkCalendar,
    *,
    first_day: date,
    last_day: date,
) -> Backtest:
    """Decide each thread at the end of every day from `first_day` to `last_day` (inclusive).

    A thread's state only changes when a message arrives or its `next_check_at` passes, so
    the days in between are skipped: the work follows the changes, not threads x days.
    """
    if last_day < first_day:
        raise ValueError(f"last_day {last_day} is before first_day {first_day}")
    flags: list[Flag] = []
    for key, messages in threads.items():
        flags.extend(
            _replay_one(
                key, sorted(messages, key=lambda m: m.date), rules, calendar, first_day, last_day
            )
        )
    flags.sort(key=lambda f: (f.day, f.thread))
    return Backtest(
        first_day=first_day, last_day=last_day, threads=len(threads), flags=tuple(flags)
    )


def _replay_one(
    key: int,
    messages: list[ThreadMessage],
    rules: Rules,
    cal: WorkCalendar,
    first_day: date,
    last_day: date,
) -> list[Flag]:
    flags: list[Flag] = []
    was_quiet = False
    day = first_day - timedelta(days=1)  # the evening before: what was quiet already
    while day <= last_day:
        end = _day_end(day, cal)
        known = tuple(m for m in messages if m.date < end)
        decision = decide(ThreadHistory(messages=known), rules, cal, end)
        quiet = decision.state is ThreadState.QUIET
        if quiet and not was_quiet and day >= first_day:
            flags.append(
                Flag(
                    thread=key, day=day, step=decision.step, answered_at=_reply_after(messages, end)
                )
            )
        was_quiet = quiet
        # Nothing changes before the next message or the next check: jump to that day.
        upcoming = [m.date for m in messages if m.date >= end]
        changes = [t for t in (decision.next_check_at, min(upcoming, default=None)) if t]
        if not changes:
            break
        # A change at exactly midnight already shows at the end of the day before.
        at = min(changes) - timedelta(microseconds=1)
        day = max(day + timedelta(days=1), at.astimezone(cal.tz).date())
    return flags


def _reply_after(messages: list[ThreadMessage], moment: datetime) -> datetime | None:
    return next(
        (m.date for m in messages if m.kind is MessageKind.REPLY and m.date >= moment), None
    )


def _day_end(day: date, cal: WorkCalendar) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), cal.tz)


def weekly_table(report: Backtest) -> list[str]:
    """The report as lines of text: one row per week, then a summary line."""
    lines = [f"{'week of':<12} {'flagged quiet':>13} {'answered later':>14} {'false alarms':>12}"]
    start = report.first_day - timedelta(days=report.first_day.weekday())
    while start <= report.last_day:
        week = [f for f in report.flags if start <= f.day < start + timedelta(days=7)]
        answered = sum(1 for f in week if f.false_alarm)
        rate = f"{answered / len(week):.0%}" if week else "-"
        lines.append(f"{start.isoformat():<12} {len(week):>13} {answered:>14} {rate:>12}")
        start += timedelta(days=7)
    days = (report.last_day - report.first_day).days + 1
    lines.append(
        f"backtest: {days} days, {report.threads} threads, {report.threads_flagged} flagged "
        f"quiet, {report.threads_answered_later} answered later anyway "
        f"(false-alarm rate {report.false_alarm_rate:.1%})"
    )
    return lines
