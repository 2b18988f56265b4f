"""The domain's values: frozen, keyword-only dataclasses and enums. Datetimes are aware (UTC)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime, time
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Any, TypeVar

_T = TypeVar("_T")


def cheap_init(cls: type[_T]) -> type[_T]:
    """Give a frozen dataclass (without __post_init__) an __init__ that sets every field at
    once. The generated one calls `object.__setattr__` once per field, which makes building a
    ten-field value cost as much as parsing half a header; the values, defaults, equality and
    repr stay the dataclass's own (tests compare both constructors)."""
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} checks its values in __post_init__: keep its __init__")
    params: list[str] = []
    items: list[str] = []
    factories: list[str] = []
    scope: dict[str, Any] = {"_set": object.__setattr__, "_MISSING": MISSING}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.default is not MISSING:
            scope[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            scope[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_MISSING")
            factories.append(f" if {f.name} is _MISSING: {f.name} = _factory_{f.name}()\n")
        else:
            params.append(f.name)
        items.append(f"{f.name!r}: {f.name}")
    source = (
        f"def __init__(self, *, {', '.join(params)}):\n"
        + "".join(factories)
        + f" _set(self, '__dict__', {{{', '.join(items)}}})\n"
    )
    exec(source, scope)  # noqa: S102 - from the class's own field names, as `dataclasses` does
    init = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


# Domains shared by strangers: a rep on gmail.com does not make every Gmail user a colleague.
FREEMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "yandex.ru",
        "qq.com",
        "163.com",
    }
)


class MessageKind(StrEnum):
    OUTBOUND = "outbound"  # from one of the rep's addresses to someone outside
    REPLY = "reply"  # a human answer from an external participant
    AUTO_REPLY = "auto_reply"  # out-of-office, autoresponder
    BOUNCE = "bounce"  # delivery failure
    BULK = "bulk"  # lists, newsletters, notifications
    INTERNAL = "internal"  # only the rep's own organisation


class ThreadState(StrEnum):
    AWAITING_REPLY = "awaiting_reply"
    QUIET = "quiet"
    REPLIED = "replied"
    PAUSED = "paused"
    BOUNCED = "bounced"
    SNOOZED = "snoozed"
    CLOSED = "closed"
    IGNORED = "ignored"


@cheap_init
@dataclass(frozen=True, kw_only=True)
class Address:
    email: str  # as written, stripped; compare with `normalized`
    name: str = ""

    @property
    def normalized(self) -> str:
        return self.email.strip().lower()

    @property
    def domain(self) -> str:
        return self.normalized.rpartition("@")[2]


@cheap_init
@dataclass(frozen=True, kw_only=True)
class HeaderFacts:
    """What the decisions need from a message's header, decoded and tolerant of junk."""

    message_id: str | None  # "<id@host>" with angle brackets, or None when absent/unusable
    in_reply_to: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    subject: str = ""
    from_: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    date: datetime | None = None
    # Lower-cased header name -> decoded value, only for the names classification reads.
    signals: dict[str, str] = field(default_factory=dict)
    defects: tuple[str, ...] = ()

    @property
    def recipients(self) -> tuple[Address, ...]:
        return self.to + self.cc


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Who the rep is: their addresses (aliases) and their organisation's domains."""

    addresses: frozenset[str]  # canonical addresses (see `canonical_address`)
    org_domains: frozenset[str]

    @classmethod
    def from_addresses(cls, addresses: Iterable[str]) -> Identity:
        """The rep's organisation is the domains of their addresses, except free-mail ones."""
        canonical = frozenset(canonical_address(a) for a in addresses)
        domains = {a.rpartition("@")[2] for a in canonical} - FREEMAIL_DOMAINS
        return cls(addresses=canonical, org_domains=frozenset(domains))

    def is_own_address(self, email: str) -> bool:
        # Most senders are already canonical (normalized, no plus tag): skip the rebuild; and
        # an address on none of the rep's domains cannot become one of theirs by it.
        if email in self.addresses:
            return True
        if email.strip().lower().rpartition("@")[2] not in self._address_domains:
            return False
        return canonical_address(email) in self.addresses

    @cached_property
    def _address_domains(self) -> frozenset[str]:
        """The part after the last "@" of each address (the whole of one without "@")."""
        return frozenset(a.rpartition("@")[2] for a in self.addresses)

    def is_internal(self, email: str) -> bool:
        return email.strip().lower().rpartition("@")[2] in self.org_domains


@lru_cache(maxsize=8192)  # pure, and called for every sender of every message
def canonical_address(email: str) -> str:
    """Lower-case and drop plus-addressing: rep+crm@x.com is rep@x.com."""
    local, _, domain = email.strip().lower().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}" if local else email.strip().lower()


Day = date  # a calendar day; `date` is also a field name in the classes below


class Subkind(StrEnum):
    """A finer reading inside a kind; the rules may treat some of these apart."""

    OUT_OF_OFFICE = "out_of_office"  # auto_reply: away, maybe with a return date
    LEFT_COMPANY = "left_company"  # auto_reply: the person left; maybe a replacement contact
    CHALLENGE = "challenge"  # auto_reply: challenge-response anti-spam ("verify you are human")
    READ_RECEIPT = "read_receipt"  # auto_reply: MDN; says nothing about an answer
    DELIVERY_RECEIPT = "delivery_receipt"  # auto_reply: DSN Action delivered/relayed/expanded
    DELAY_NOTICE = "delay_notice"  # bounce (hard=False): DSN Action delayed; still retried
    FEEDBACK_REPORT = "feedback_report"  # auto_reply: ARF abuse/complaint report
    CALENDAR_REPLY = "calendar_reply"  # reply: an accepted/declined invitation (METHOD:REPLY)
    LIST_RELAYED = "list_relayed"  # reply: a person's answer relayed by a mailing list
    EMPTY_REPLY = "empty_reply"  # bulk: only quotes earlier mail, no text of its own


@cheap_init
@dataclass(frozen=True, kw_only=True)
class Classification:
    kind: MessageKind
    reason: str  # which header or phrase decided, for the rep to read
    subkind: Subkind | None = None
    return_date: date | None = None  # auto_reply: the day the person says they are back
    bounce_recipient: str | None = None  # bounce/delay: the address that failed
    bounce_hard: bool | None = None  # bounce: True permanent (5.x.x), False transient (4.x.x)
    decline: bool = False  # reply: a clear "no" ("not interested", "remove me")
    replacement_contact: str | None = None  # left_company: whom they name instead
    returned_message_ids: tuple[str, ...] = ()  # bounce: the returned original's Message-ID(s)


@cheap_init
@dataclass(frozen=True, kw_only=True)
class RecipientStatus:
    """One per-recipient block of a delivery-status report (RFC 3464)."""

    recipient: str  # Final-Recipient (else Original-Recipient), lower-cased; "" when absent
    action: str = ""  # failed, delayed, delivered, relayed, expanded (lower-cased)
    status: str = ""  # RFC 3463 code such as "5.1.1"
    diagnostic: str = ""  # Diagnostic-Code, shortened


@cheap_init
@dataclass(frozen=True, kw_only=True)
class MessageBody:
    """What the decisions need from a message's body, which may be cut after the first 16 KB."""

    content_type: str = ""  # top-level "type/subtype", lower-cased
    report_type: str = ""  # multipart/report's report-type, lower-cased
    text: str = ""  # the first text/plain part, else text/html as text; shortened
    text_is_html: bool = False
    delivery_status: tuple[RecipientStatus, ...] = ()
    returned_message_ids: tuple[str, ...] = ()  # Message-ID(s) of a returned original
    returned_recipients: tuple[str, ...] = ()  # To/Cc of a returned original, lower-cased
    disposition: str | None = None  # a read receipt's Disposition field
    feedback_report: bool = False  # an ARF (message/feedback-report) part is present
    calendar_method: str | None = None  # text/calendar METHOD, upper-cased
    calendar_partstat: str | None = None  # the attendee's PARTSTAT in a calendar REPLY
    defects: tuple[str, ...] = ()


@cheap_init  # built for every message (or thread) the rules decide on
@dataclass(frozen=True, kw_only=True)
class ThreadMessage:
    """One message of a thread as the rules see it."""

    message_id: str
    kind: MessageKind
    date: datetime
    sender: str  # normalized address
    sender_name: str = ""
    recipients: tuple[str, ...] = ()
    subkind: Subkind | None = None
    return_date: Day | None = None  # an out-of-office reply's "back on"
    decline: bool = False  # a reply that clearly says no
    replacement_contact: str | None = None  # whom a left-the-company reply names


@cheap_init  # built for every message (or thread) the rules decide on
@dataclass(frozen=True, kw_only=True)
class ThreadHistory:
    """A thread's messages (oldest first) plus what the rep decided or told us by hand.

    The follow-ups sent are not stored here: `rules.followups_sent` derives them from the
    messages, so a replay of old mail counts them exactly as a live evaluation does.
    """

    messages: tuple[ThreadMessage, ...]
    snoozed_until: datetime | None = None
    closed_reason: str | None = None
    answered_at: datetime | None = None  # "they called / we met", noted by the rep
    answered_note: str | None = None
    reopened_at: datetime | None = None  # watch again from here; earlier mail cannot close it


@dataclass(frozen=True, kw_only=True)
class TimeOff:
    """The rep is away from `start` to `end`, both whole days in the mailbox's zone."""

    start: date
    end: date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"time off ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Bounds:
    """The values a number of the rules may take: `low` to `high`, both included unless
    `low_open` (then `low` itself is refused)."""

    low: float
    high: float
    low_open: bool = False

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        return f"{'>' if self.low_open else '>='} {self.low:g} and <= {self.high:g}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleLimits:
    """Every bound of the rules, in one place: `Rules` checks them, and the API and pages'
    schema (services.rules_schema) is built from them."""

    wait_days: Bounds  # wait_business_days, each cadence step, auto_reply_pause_business_days
    cadence_steps: Bounds  # how many steps the cadence lists
    max_followups: Bounds
    # Zero would flag every reply as unanswered the moment it arrives: the rep owes an
    # answer only after some working time (the pages offer quarters of an hour).
    response_time_hours: Bounds
    time_off_ranges: int  # at most this many ranges
    time_off_days: int  # one range spans at most this many days (end - start)
    time_off_years: Bounds  # the years a range may touch


RULE_LIMITS = RuleLimits(
    wait_days=Bounds(low=1, high=60),
    cadence_steps=Bounds(low=1, high=10),
    max_followups=Bounds(low=0, high=10),
    response_time_hours=Bounds(low=0, high=40, low_open=True),
    time_off_ranges=100,
    time_off_days=366,
    time_off_years=Bounds(low=2000, high=2100),
)


@dataclass(frozen=True, kw_only=True)
class Rules:
    """A mailbox's rules; every field is configurable per mailbox, within RULE_LIMITS.

    Waits: `wait_business_days` after the rep's e-mail, then `cadence_business_days[k-1]`
    after follow-up k (the last value repeats); after `max_followups` follow-ups and one
    more wait the thread closes as no_response.
    """

    wait_business_days: int = 3
    cadence_business_days: tuple[int, ...] = (3, 5, 7)
    max_followups: int = 3
    auto_reply_pause_business_days: int = 5
    response_time_business_hours: float = 1.0
    work_day_start: time = time(9, 0)  # local working hours of the mailbox's zone
    work_day_end: time = time(17, 0)
    time_off: tuple[TimeOff, ...] = ()

    def __post_init__(self) -> None:
        limits = RULE_LIMITS
        days = limits.wait_days
        numbers = (
            ("wait_business_days", self.wait_business_days, days),
            ("max_followups", self.max_followups, limits.max_followups),
            ("auto_reply_pause_business_days", self.auto_reply_pause_business_days, days),
            (
                "response_time_business_hours",
                self.response_time_business_hours,
                limits.response_time_hours,
            ),
            (
                "cadence_business_days (steps)",
                len(self.cadence_business_days),
                limits.cadence_steps,
            ),
            *(("cadence_business_days", d, days) for d in self.cadence_business_days),
        )
        for name, value, bounds in numbers:
            if not bounds.holds(value):  # NaN holds nothing either
                raise ValueError(f"{name} must be {bounds.describe()}, not {value}")
        if self.work_day_start >= self.work_day_end:
            raise ValueError("working hours must start before they end")
        if len(self.time_off) > limits.time_off_ranges:
            raise ValueError(f"time_off: at most {limits.time_off_ranges} ranges")
        years = limits.time_off_years
        for t in self.time_off:
            if (t.end - t.start).days > limits.time_off_days:
                raise ValueError("time_off: one range may last at most a year")
            if not (years.holds(t.start.year) and years.holds(t.end.year)):
                raise ValueError(
                    f"time_off: dates must lie between the years {years.low:g} and {years.high:g}"
                )


@cheap_init  # built for every message (or thread) the rules decide on
@dataclass(frozen=True, kw_only=True)
class Decision:
    state: ThreadState
    reason: str
    next_check_at: datetime | None  # when the rules must look at this thread again
    needs_response: bool = False
    step: int = 0  # the follow-up step that is due (1-based) when state is quiet
    followups_sent: int = 0  # the rep's e-mails since the last answer, beyond the first
