"""What a follow-up draft for a quiet thread says and to whom: a `FollowUpPlan`.

Pure: no Jinja, no MIME, no clock. The plan answers the rep's own last e-mail of the thread
(so that the draft stays in the thread on both sides; without a Message-ID it simply carries
no In-Reply-To/References) and forwards the last e-mail of the unanswered run that carries the
substance (the details are in it): not a one-line bump, unless the bump quotes the original.
The question on top comes from the step's templates, which get the plan's `variables`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from app.domain.model import FREEMAIL_DOMAINS, Address, Identity, MessageKind, Rules
from app.domain.replytext import split_reply
from app.domain.threads import strip_reply_prefixes
from app.domain.worktime import WorkCalendar, add_business_days, business_days_elapsed, short_date

# Second-level labels under which companies register (buyer.co.uk is "Buyer").
_GENERIC_LABELS = frozenset({"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc", "gv"})
# Local parts that name a role, not a person: no first name to use.
_ROLE_LOCAL_PARTS = frozenset(
    {"info", "sales", "contact", "hello", "office", "team", "support", "admin", "mail", "kontakt"}
)
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
TEMPLATE_VARIABLES = (
    "first_name",
    "company",
    "business_days_quiet",
    "next_step_date",
    "subject",
    "step",
)


@dataclass(frozen=True, kw_only=True)
class StoredMessage:
    """One message of the thread as storage knows it (header facts only)."""

    message_id: str | None  # "<id@host>", None when the message had none
    kind: MessageKind
    date: datetime
    subject: str
    sender: Address
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    references: tuple[str, ...] = ()
    in_reply_to: tuple[str, ...] = ()
    key: str = ""  # storage's key: the Message-ID, or a stand-in for a message without one

    @property
    def ident(self) -> str:
        """What tells this message from the others of its thread, with or without an ID."""
        return self.message_id or self.key


@dataclass(frozen=True, kw_only=True)
class FollowUpPlan:
    thread_id: int
    step: int  # 1-based follow-up step
    stage: str  # "first" | "middle" | "last": which family of questions
    forward: StoredMessage  # the rep's e-mail forwarded inline: the last one with substance
    answers: StoredMessage  # the rep's last e-mail, which the draft replies to
    forward_reason: str  # which e-mail is forwarded and why, for the rep to read
    from_: Address  # the address the rep used
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str  # "Re: " + the subject without stacked prefixes
    in_reply_to: str | None  # None when the rep's last e-mail had no Message-ID
    references: tuple[str, ...]
    next_step_date: date | None  # local date of the next follow-up, None on the last step
    timezone: str
    variables: Mapping[str, str | int] = field(default_factory=dict)


class NothingToForward(ValueError):
    """The thread has no outbound e-mail: there is nothing to follow up."""


BUMP_MAX_WORDS = 25  # "Hi Erin, bumping this up." - a nudge, not the offer itself
_WORD_RE = re.compile(r"\w+")


def stage_of(step: int, max_followups: int) -> str:
    if step >= max_followups:
        return "last"
    return "first" if step == 1 else "middle"


def last_outbound(messages: Sequence[StoredMessage]) -> StoredMessage | None:
    """The rep's last e-mail (the one a follow-up answers), None when the thread has none.
    Of two sent at the same time, the later in `messages` (storage lists a thread by date,
    then by id)."""
    outbound = [m for m in messages if m.kind is MessageKind.OUTBOUND]
    return max(reversed(outbound), key=lambda m: m.date, default=None)


def unanswered_run(messages: Sequence[StoredMessage]) -> list[StoredMessage]:
    """The rep's e-mails since the last human answer, newest first: the candidates to
    forward."""
    answered = max((m.date for m in messages if m.kind is MessageKind.REPLY), default=None)
    run = [
        m
        for m in messages
        if m.kind is MessageKind.OUTBOUND and (answered is None or m.date > answered)
    ]
    return sorted(reversed(run), key=lambda m: m.date, reverse=True)


def weigh_forward(text: str, *, has_attachment: bool = False) -> str:
    """Whether one of the rep's e-mails is worth forwarding: "substance"; "bump", a short
    nudge that quotes and attaches nothing ("Hi Erin, bumping this up."); or "quoting_bump",
    a short nudge above the quoted original, which carries it (forward it then)."""
    if has_attachment:
        return "substance"
    reply = split_reply(text)
    if len(_WORD_RE.findall(reply.own)) > BUMP_MAX_WORDS:
        return "substance"
    return "quoting_bump" if reply.quoted else "bump"


def forward_reason(
    forward: StoredMessage,
    latest: StoredMessage,
    *,
    calendar: WorkCalendar,
    bumps_passed: int = 0,
    quotes_original: bool = False,
    all_bumps: bool = False,
) -> str:
    """Which e-mail a draft forwards and why, as the rep reads it."""
    what = f"your e-mail of {_when(forward.date, calendar)} ({forward.subject[:60]!r})"
    if forward is latest or forward.ident == latest.ident:
        if all_bumps and bumps_passed:
            return f"forwards {what}: every e-mail of yours since the last answer is a short nudge"
        if quotes_original:
            return f"forwards {what}: a short nudge, but it quotes your earlier e-mail"
        return f"forwards {what}: your last e-mail in this thread"
    if not bumps_passed:
        gone = f"your later e-mail of {_when(latest.date, calendar)} is gone from the server"
        return f"forwards {what}: {gone}"
    nudges = "nudge" if bumps_passed == 1 else f"{bumps_passed} nudges"
    return (
        f"forwards {what}: it carries the substance; your later {nudges} since "
        f"(the last of {_when(latest.date, calendar)}) only bumped it"
    )


def _when(moment: datetime, calendar: WorkCalendar) -> str:
    local = moment.astimezone(calendar.tz)
    return f"{short_date(local.date())} {local.year} {local.hour:02d}:{local.minute:02d}"


def reply_subject(subject: str) -> str:
    base = strip_reply_prefixes(subject)
    return f"Re: {base}" if base else "Re:"


def company_of(domain: str) -> str:
    """ "buyer-group.co.uk" -> "Buyer Group"; a free-mail domain names no company."""
    domain = domain.strip().lower().rstrip(".")
    if not domain or domain in FREEMAIL_DOMAINS:
        return ""
    labels = [label for label in domain.split(".") if label]
    if len(labels) > 1:
        labels = labels[:-1]  # the top-level domain
    while len(labels) > 1 and labels[-1] in _GENERIC_LABELS:
        labels = labels[:-1]
    name = labels[-1] if labels else ""
    return " ".join(part.capitalize() for part in re.split(r"[-_]+", name) if part)


def first_name_of(address: Address) -> str:
    """From the display name ("Anna Schmidt", "Schmidt, Anna"), else a personal local part
    ("anna.schmidt@"); "" when neither names a person."""
    name = address.name.strip().strip("\"'")
    if name and "@" not in name:
        if "," in name:
            after = name.split(",", 1)[1].split()
            return after[0] if after else ""
        return name.split()[0]
    local = address.normalized.partition("@")[0].split("+", 1)[0]
    first = re.split(r"[._-]", local, maxsplit=1)[0]
    if len(first) < 2 or not first.isalpha() or first in _ROLE_LOCAL_PARTS:
        return ""
    return first.capitalize()


def describe_date(day: date) -> str:
    """ "Thursday 3 December": English, independent of the process locale."""
    return f"{_DAY_NAMES[day.weekday()]} {day.day} {_MONTH_NAMES[day.month - 1]}"


def plan_followup(
    *,
    thread_id: int,
    step: int,
    messages: Sequence[StoredMessage],
    identity: Identity,
    rules: Rules,
    calendar: WorkCalendar,
    now: datetime,
    names: Mapping[str, str] | None = None,
    forward: StoredMessage | None = None,
    why: str = "",
) -> FollowUpPlan:
    """The plan for `step` of a quiet thread. `names` maps lower-cased addresses to display
    names known from elsewhere (the forwarded message's own To/Cc header). `forward` is the
    e-mail to forward (the caller read the bodies: `weigh_forward`), by default the rep's last
    one; `why` says why that one."""
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    last = last_outbound(messages)
    if last is None:
        raise NothingToForward(f"thread {thread_id} has no e-mail of yours")
    forward = forward or last
    why = why or forward_reason(forward, last, calendar=calendar)
    known = _known_names(messages, names or {})
    to = tuple(_named(a, known) for a in last.to)
    cc = tuple(_named(a, known) for a in last.cc)
    prospect = next(
        (
            a
            for a in (*to, *cc)
            if not identity.is_own_address(a.email) and not identity.is_internal(a.email)
        ),
        to[0] if to else None,
    )
    # Without a Message-ID of its own the rep's e-mail cannot be referred to: no threading
    # headers then (its own References alone would make the draft an answer to another).
    references = (
        tuple(dict.fromkeys((*last.references, last.message_id))) if last.message_id else ()
    )
    stage = stage_of(step, rules.max_followups)
    next_day: date | None = None
    if stage != "last":
        cadence = rules.cadence_business_days
        wait = cadence[min(step, len(cadence)) - 1]
        next_day = add_business_days(now, wait, calendar).due_at.astimezone(calendar.tz).date()
    subject = strip_reply_prefixes(last.subject)
    variables: dict[str, str | int] = {
        "first_name": first_name_of(prospect) if prospect else "",
        "company": company_of(prospect.domain) if prospect else "",
        "business_days_quiet": business_days_elapsed(last.date, now, calendar),
        "next_step_date": describe_date(next_day) if next_day else "",
        "subject": subject,
        "step": step,
    }
    return FollowUpPlan(
        thread_id=thread_id,
        step=step,
        stage=stage,
        forward=forward,
        answers=last,
        forward_reason=why,
        from_=last.sender,
        to=to,
        cc=cc,
        subject=reply_subject(last.subject),
        in_reply_to=last.message_id,
        references=references,
        next_step_date=next_day,
        timezone=calendar.timezone,
        variables=variables,
    )


def _known_names(messages: Sequence[StoredMessage], names: Mapping[str, str]) -> dict[str, str]:
    known = {m.sender.normalized: m.sender.name for m in messages if m.sender.name}
    for m in messages:
        for a in (*m.to, *m.cc):
            if a.name:
                known.setdefault(a.normalized, a.name)
    known.update({k.lower(): v for k, v in names.items() if v})
    return known


def _named(address: Address, known: Mapping[str, str]) -> Address:
    if address.name:
        return address
    return Address(email=address.email, name=known.get(address.normalized, ""))
