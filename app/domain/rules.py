"""`decide(history, rules, calendar, now)`: a thread's state, why, and when to look again.

Pure: the caller passes the clock and the rep's calendar. The reason is written for the rep
("quiet: 3 business days since your e-mail of Fri 14:02 Europe/Berlin"), because a wrong
verdict is debugged from it.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, time, timedelta

from app.domain.model import (
    Decision,
    MessageKind,
    Rules,
    Subkind,
    ThreadHistory,
    ThreadMessage,
    ThreadState,
    TimeOff,
)
from app.domain.worktime import (
    WorkCalendar,
    add_business_days,
    add_business_hours,
    describe_local,
    elapsed_and_next,
    next_working_moment,
    short_date,
)

# Kinds that take part in the conversation; internal and bulk mail never move the clock.
_CONVERSATION = frozenset(
    {MessageKind.OUTBOUND, MessageKind.REPLY, MessageKind.AUTO_REPLY, MessageKind.BOUNCE}
)
# Machine answers that say nothing about the person: a read receipt, a delivery receipt, an
# abuse report, a delay notice (still being retried) or a challenge-response request.
_NO_SIGNAL = frozenset(
    {
        Subkind.READ_RECEIPT,
        Subkind.DELIVERY_RECEIPT,
        Subkind.FEEDBACK_REPORT,
        Subkind.DELAY_NOTICE,
        Subkind.CHALLENGE,
    }
)
# The states of a thread the rep is waiting on: the rep's time off pauses exactly these.
_WATCHED = frozenset({ThreadState.AWAITING_REPLY, ThreadState.QUIET, ThreadState.PAUSED})


def decide(history: ThreadHistory, rules: Rules, calendar: WorkCalendar, now: datetime) -> Decision:
    """The thread's state at `now`. `next_check_at` is always after `now` (or None)."""
    conversation = _conversation(history)
    followups = _followups_sent(history, conversation)
    decision = _decide(history, conversation, followups, rules, calendar, now)
    if rules.time_off and decision.state in _WATCHED:
        decision = _time_off(decision, rules.time_off, calendar, now)
    if not followups:  # Decision's default: no copy needed (the common case)
        return decision
    return dataclasses.replace(decision, followups_sent=followups)


def followups_sent(history: ThreadHistory) -> int:
    """The rep's e-mails since the last human answer (or the rep's own note, or a reopen),
    beyond the first: writing again without an answer is a follow-up."""
    return _followups_sent(history, _conversation(history))


def _followups_sent(history: ThreadHistory, conversation: list[ThreadMessage]) -> int:
    reset = _reset_point(history, conversation)
    mine = 0
    for m in history.messages:
        if m.kind is MessageKind.OUTBOUND and (reset is None or m.date > reset):
            mine += 1
    return max(mine - 1, 0)


def _reset_point(history: ThreadHistory, conversation: list[ThreadMessage]) -> datetime | None:
    marks = [m.date for m in conversation if m.kind is MessageKind.REPLY]
    marks += [t for t in (history.answered_at, history.reopened_at) if t is not None]
    return max(marks, default=None)


def _conversation(history: ThreadHistory) -> list[ThreadMessage]:
    return [m for m in history.messages if m.kind in _CONVERSATION and m.subkind not in _NO_SIGNAL]


def _decide(
    history: ThreadHistory,
    conversation: list[ThreadMessage],
    followups: int,
    rules: Rules,
    calendar: WorkCalendar,
    now: datetime,
) -> Decision:
    if history.closed_reason:
        return Decision(
            state=ThreadState.CLOSED, reason=f"closed: {history.closed_reason}", next_check_at=None
        )
    if history.snoozed_until and history.snoozed_until > now:
        when = describe_local(history.snoozed_until, calendar)
        return Decision(
            state=ThreadState.SNOOZED,
            reason=f"snoozed until {when}",
            next_check_at=history.snoozed_until,
        )

    if not conversation and history.answered_at is None:
        kinds = sorted({m.kind.value for m in history.messages}) or ["no messages"]
        return Decision(
            state=ThreadState.IGNORED,
            reason=f"ignored: not a sales conversation ({', '.join(kinds)} only)",
            next_check_at=None,
        )

    last_out: ThreadMessage | None = None
    for m in conversation:
        if m.kind is MessageKind.OUTBOUND:
            last_out = m
    # What happened after the rep's last e-mail, or after a reopen: older mail is settled.
    # One pass keeps the last reply, left-the-company notice, bounce and auto-reply of it.
    since = last_out.date if last_out else None
    if history.reopened_at is not None and (since is None or history.reopened_at > since):
        since = history.reopened_at
    reply = gone = bounce = away = None
    for m in conversation:
        if since is not None and m.date <= since:
            continue
        if m.kind is MessageKind.REPLY:
            reply = m
        elif m.kind is MessageKind.BOUNCE:
            bounce = m
        elif m.kind is MessageKind.AUTO_REPLY:
            away = m
        if m.subkind is Subkind.LEFT_COMPANY:
            gone = m

    answered = history.answered_at
    # A note counts when it is newer than the rep's last e-mail and not older than a reopen
    # (a reopen and a note in the same instant: the note is the newer word).
    noted = (
        answered is not None
        and (last_out is None or answered > last_out.date)
        and (history.reopened_at is None or answered >= history.reopened_at)
    )
    if answered is not None and noted and (reply is None or reply.date <= answered):
        note = f": “{history.answered_note}”" if history.answered_note else ""
        when = describe_local(answered, calendar)
        return Decision(
            state=ThreadState.REPLIED,
            reason=f"replied: you noted an answer on {when}{note}",
            next_check_at=None,
        )
    if reply is not None and reply.decline:
        return Decision(
            state=ThreadState.CLOSED,
            reason=(
                f"closed: declined — {reply.sender} said no on "
                f"{describe_local(reply.date, calendar)}"
            ),
            next_check_at=None,
        )
    if reply is not None:
        return _replied(reply, is_lead=last_out is None, rules=rules, cal=calendar, now=now)
    if last_out is None:  # only machine mail (auto-replies, bounces) and no e-mail of the rep's
        return Decision(
            state=ThreadState.IGNORED,
            reason="ignored: automatic mail only, no e-mail of yours in this thread",
            next_check_at=None,
        )

    if gone is not None:
        instead = f"; they name {gone.replacement_contact}" if gone.replacement_contact else ""
        return Decision(
            state=ThreadState.BOUNCED,
            reason=f"bounced: {gone.sender} has left the company{instead}",
            next_check_at=None,
        )
    if bounce is not None:
        when = describe_local(bounce.date, calendar)
        return Decision(
            state=ThreadState.BOUNCED,
            reason=f"bounced: delivery failure notice of {when} after your e-mail",
            next_check_at=None,
        )

    resume_at: datetime | None = None
    if away is not None:
        if away.return_date is not None:
            # Back on that day: wait one more business day so they can catch up on mail.
            back = datetime.combine(away.return_date, calendar.day_start, calendar.tz)
            pause = add_business_days(back, 1, calendar)
            why = f"back on {short_date(away.return_date)}, so waiting until"
        else:
            pause = add_business_days(away.date, rules.auto_reply_pause_business_days, calendar)
            why = (
                f"no return date found, waiting {rules.auto_reply_pause_business_days} "
                "business days until"
            )
        if now < pause.due_at:
            return Decision(
                state=ThreadState.PAUSED,
                reason=(
                    f"paused: automatic reply from {away.sender} on "
                    f"{describe_local(away.date, calendar)}; {why} "
                    f"{describe_local(pause.due_at, calendar)}"
                ),
                next_check_at=pause.due_at,
            )
        resume_at = pause.due_at

    start, since_text = last_out.date, f"your e-mail of {describe_local(last_out.date, calendar)}"
    if history.reopened_at is not None and history.reopened_at > last_out.date:
        start = history.reopened_at
        since_text = f"you reopened it on {describe_local(start, calendar)}"
    return _waiting(start, since_text, resume_at, followups, rules, calendar, now)


def _replied(
    reply: ThreadMessage, *, is_lead: bool, rules: Rules, cal: WorkCalendar, now: datetime
) -> Decision:
    who = f"{reply.sender_name} <{reply.sender}>" if reply.sender_name else reply.sender
    what = "new e-mail" if is_lead else "replied"
    reason = f"replied: {who} {what} on {describe_local(reply.date, cal)}"
    owe_by = add_business_hours(reply.date, rules.response_time_business_hours, cal)
    if now >= owe_by:
        return Decision(
            state=ThreadState.REPLIED,
            reason=f"{reason}; you have not answered yet",
            next_check_at=None,
            needs_response=True,
        )
    return Decision(state=ThreadState.REPLIED, reason=reason, next_check_at=owe_by)


def _waiting(
    start: datetime,
    since: str,
    resume_at: datetime | None,
    sent: int,
    rules: Rules,
    cal: WorkCalendar,
    now: datetime,
) -> Decision:
    cadence = rules.cadence_business_days
    wait = rules.wait_business_days if sent == 0 else cadence[min(sent, len(cadence)) - 1]
    span = add_business_days(start, wait, cal)
    due_at = max(span.due_at, resume_at) if resume_at else span.due_at
    skipped = (
        "".join(f"; {short_date(d)} skipped as a holiday ({name})" for d, name in span.skipped)
        if span.skipped
        else ""
    )
    after_followups = f" and {_followups(sent)}" if sent else ""
    if now < due_at:
        return Decision(
            state=ThreadState.AWAITING_REPLY,
            reason=(
                f"awaiting reply: {wait} business days after {since}{after_followups} "
                f"(quiet from {describe_local(due_at, cal)}){skipped}"
            ),
            next_check_at=due_at,
        )
    if sent >= rules.max_followups:
        return Decision(
            state=ThreadState.CLOSED,
            reason=(
                f"closed: no_response — no answer {wait} business days after {_followups(sent)}"
                f"; your last was {since}"
            ),
            next_check_at=None,
        )
    step = sent + 1
    final = " (the last one: permission to say no)" if step == rules.max_followups else ""
    # The time that has really passed, not the rule's threshold; looked at again when the
    # next business day completes, so the reason never goes stale.
    elapsed, next_day_completes = elapsed_and_next(start, now, cal)
    return Decision(
        state=ThreadState.QUIET,
        reason=(
            f"quiet for {_days(max(wait, elapsed))} since {since}{after_followups}{skipped}; "
            f"follow-up {step} of {rules.max_followups} is due{final}"
        ),
        next_check_at=next_day_completes,
        step=step,
    )


def _days(n: int) -> str:
    return f"{n} business day" if n == 1 else f"{n} business days"


def _time_off(
    decision: Decision, time_off: tuple[TimeOff, ...], cal: WorkCalendar, now: datetime
) -> Decision:
    """While the rep is away, a watched thread is paused until they are back (so no thread
    turns quiet and no draft is made meanwhile); before an absence, look again when it starts."""
    today = now.astimezone(cal.tz).date()
    current = [t for t in time_off if t.start <= today <= t.end]
    if current:
        end = _merged_end(today, time_off)
        back = next_working_moment(_local_midnight(end + timedelta(days=1), cal), cal)
        return Decision(
            state=ThreadState.PAUSED,
            reason=(
                f"paused: you are away until {short_date(end)} (time off); "
                f"looking again {describe_local(back, cal)}"
            ),
            next_check_at=back,
        )
    starts = [_local_midnight(t.start, cal) for t in time_off if t.start > today]
    if not starts:
        return decision
    upcoming = min(starts)
    if decision.next_check_at is None or upcoming < decision.next_check_at:
        return dataclasses.replace(decision, next_check_at=upcoming)
    return decision


def _merged_end(today: date, time_off: tuple[TimeOff, ...]) -> date:
    """The last day of the absence that contains `today`, joining back-to-back ranges."""
    end = max(t.end for t in time_off if t.start <= today <= t.end)
    while True:
        later = [t.end for t in time_off if t.start <= end + timedelta(days=1) and t.end > end]
        if not later:
            return end
        end = max(later)


def _local_midnight(day: date, cal: WorkCalendar) -> datetime:
    return datetime.combine(day, time(0), cal.tz)


def _followups(n: int) -> str:
    return f"{n} follow-up{'s' if n != 1 else ''}"
