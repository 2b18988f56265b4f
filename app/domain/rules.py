"""`decide(history, rules, calendar, now)`: a thread's state, why, and when to look again.

Pure: the caller passes the clock and the rep's calendar. The reason is written for the rep
("quiet: 3 business days since your e-mail of Fri 14:02 Europe/Berlin"), because a wrong
verdict is debugged from it.
"""

from __future__ import annotations

from datetime import datetime

from app.domain.model import (
    Decision,
    MessageKind,
    Rules,
    Subkind,
    ThreadHistory,
    ThreadMessage,
    ThreadState,
)
from app.domain.worktime import (
    WorkCalendar,
    add_business_days,
    add_business_hours,
    describe_local,
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


def decide(history: ThreadHistory, rules: Rules, calendar: WorkCalendar, now: datetime) -> Decision:
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

    conversation = [
        m for m in history.messages if m.kind in _CONVERSATION and m.subkind not in _NO_SIGNAL
    ]
    if not conversation:
        kinds = sorted({m.kind.value for m in history.messages}) or ["no messages"]
        return Decision(
            state=ThreadState.IGNORED,
            reason=f"ignored: not a sales conversation ({', '.join(kinds)} only)",
            next_check_at=None,
        )

    outbound = [m for m in conversation if m.kind is MessageKind.OUTBOUND]
    last_out = outbound[-1] if outbound else None
    after = [m for m in conversation if last_out is None or m.date > last_out.date]

    replies = [m for m in after if m.kind is MessageKind.REPLY]
    declines = [m for m in replies if m.decline]
    if declines and declines[-1] is replies[-1]:
        no = declines[-1]
        return Decision(
            state=ThreadState.CLOSED,
            reason=f"closed: declined — {no.sender} said no on {describe_local(no.date, calendar)}",
            next_check_at=None,
        )
    if replies:
        return _replied(replies[-1], is_lead=last_out is None, rules=rules, cal=calendar, now=now)
    if last_out is None:  # only machine mail (auto-replies, bounces) and no e-mail of the rep's
        return Decision(
            state=ThreadState.IGNORED,
            reason="ignored: automatic mail only, no e-mail of yours in this thread",
            next_check_at=None,
        )

    gone = [m for m in after if m.subkind is Subkind.LEFT_COMPANY]
    if gone:
        instead = (
            f"; they name {gone[-1].replacement_contact}" if gone[-1].replacement_contact else ""
        )
        return Decision(
            state=ThreadState.BOUNCED,
            reason=f"bounced: {gone[-1].sender} has left the company{instead}",
            next_check_at=None,
        )
    bounces = [m for m in after if m.kind is MessageKind.BOUNCE]
    if bounces:
        when = describe_local(bounces[-1].date, calendar)
        return Decision(
            state=ThreadState.BOUNCED,
            reason=f"bounced: delivery failure notice of {when} after your e-mail",
            next_check_at=None,
        )

    resume_at: datetime | None = None
    auto = [m for m in after if m.kind is MessageKind.AUTO_REPLY]
    if auto:
        away = auto[-1]
        if away.return_date is not None:
            # Back on that day: wait one more business day so they can catch up on mail.
            back = datetime.combine(away.return_date, calendar.day_start, calendar.tz)
            pause = add_business_days(back, 1, calendar)
            why = f"back on {away.return_date.strftime('%a %d %b')}, so waiting until"
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

    return _waiting(last_out, resume_at, history, rules, calendar, now)


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
    last_out: ThreadMessage,
    resume_at: datetime | None,
    history: ThreadHistory,
    rules: Rules,
    cal: WorkCalendar,
    now: datetime,
) -> Decision:
    sent = history.followups_sent
    cadence = rules.cadence_business_days
    wait = rules.wait_business_days if sent == 0 else cadence[min(sent, len(cadence)) - 1]
    span = add_business_days(last_out.date, wait, cal)
    due_at = max(span.due_at, resume_at) if resume_at else span.due_at
    since = f"your e-mail of {describe_local(last_out.date, cal)}"
    skipped = "".join(
        f"; {d.strftime('%a %d %b')} skipped as a holiday ({name})" for d, name in span.skipped
    )
    if now < due_at:
        return Decision(
            state=ThreadState.AWAITING_REPLY,
            reason=(
                f"awaiting reply: {wait} business days after {since} "
                f"(quiet from {describe_local(due_at, cal)}){skipped}"
            ),
            next_check_at=due_at,
        )
    if sent >= rules.max_followups:
        return Decision(
            state=ThreadState.CLOSED,
            reason=f"closed: no_response after {sent} follow-ups; last was {since}",
            next_check_at=None,
        )
    return Decision(
        state=ThreadState.QUIET,
        reason=f"quiet: {wait} business days since {since}{skipped}",
        next_check_at=None,
        step=sent + 1,
    )
