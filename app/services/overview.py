"""What the rep's pages list: threads with their people, the time that has really passed,
the step and the draft to review; the dashboard's sections and counts.

Every elapsed time is counted in the mailbox's own business calendar and shown with the
full local date, so "quiet for 9 business days since your e-mail of Mon 23 Nov" is true
on the day the page is read, not the day the rules last ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import MessageKind, Rules, ThreadState
from app.domain.people import Person, person_of
from app.domain.worktime import WorkCalendar, business_days_elapsed, day_label
from app.errors import InvalidInput, NotFound
from app.services import drafts as drafts_service
from app.services.context import Context
from app.services.evaluation import calendar_of, rules_of
from app.services.followups import DraftDetailView, settings_of
from app.services.paging import decode_cursor, encode_cursor, split_page
from app.storage import drafts as draft_store
from app.storage import mailboxes as mailbox_store
from app.storage import threads as store
from app.storage.drafts import ListedDraft
from app.storage.engine import reading
from app.storage.threads import Correspondence, RuleThread, ThreadRow

DASHBOARD_ROWS = 10
PAGE_ROWS = 25
MAX_PAGE = 200
# The dashboard's counts, in the order a rep reads them.
STATE_ORDER = (
    ThreadState.QUIET,
    ThreadState.AWAITING_REPLY,
    ThreadState.REPLIED,
    ThreadState.PAUSED,
    ThreadState.SNOOZED,
    ThreadState.BOUNCED,
    ThreadState.CLOSED,
    ThreadState.IGNORED,
)
_INBOUND = frozenset({MessageKind.REPLY.value, MessageKind.AUTO_REPLY.value})


@dataclass(frozen=True, kw_only=True)
class ThreadLine:
    """One thread as a list row shows it."""

    id: int
    mailbox_id: int
    mailbox_name: str
    subject: str
    state: str
    reason: str
    note: str  # what the reason adds to `waited` and `step` (all of it, but for quiet ones)
    needs_response: bool
    person: Person | None
    waited: str  # "quiet for 9 business days since your e-mail of Mon 23 Nov"
    step: str  # "follow-up 2 of 3", or ""
    draft_id: int | None
    timezone: str


@dataclass(frozen=True, kw_only=True)
class StateCount:
    state: str
    count: int


@dataclass(frozen=True, kw_only=True)
class Dashboard:
    owed: list[ThreadLine]
    owed_total: int
    quiet: list[ThreadLine]
    quiet_total: int
    counts: list[StateCount]
    mailboxes: list[mailbox_store.MailboxRow]


@dataclass(frozen=True, kw_only=True)
class ThreadList:
    lines: list[ThreadLine]
    next_cursor: str | None
    mailboxes: list[tuple[int, str]]  # the user's, for the filter: (id, name)


def local_day(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "Mon 23 Nov" in the mailbox's zone; the year too when it is not this year's."""
    local = at.astimezone(tz)
    label = day_label(local.date())
    return label if local.year == now.astimezone(tz).year else f"{label} {local.year}"


def local_moment(at: datetime | None, timezone: str, now: datetime) -> str:
    """ "Mon 23 Nov 14:02" in the mailbox's zone (for timelines and statuses)."""
    if at is None:
        return ""
    tz = ZoneInfo(timezone)
    return f"{local_day(at, tz, now)} {at.astimezone(tz):%H:%M}"


def _span(start: datetime, now: datetime, cal: WorkCalendar) -> str:
    days = business_days_elapsed(start, now, cal)
    if days >= 1:
        return f"{days} business day" if days == 1 else f"{days} business days"
    hours = int((now - start).total_seconds() // 3600)
    if hours >= 1:
        return "1 hour" if hours == 1 else f"{hours} hours"
    minutes = max(1, int((now - start).total_seconds() // 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


def waited(thread: RuleThread, cal: WorkCalendar, now: datetime) -> str:
    """How long it has really been, and since which e-mail, for the thread's state."""
    tz = cal.tz
    out, into = thread.last_outbound_at, thread.last_inbound_at
    if thread.needs_response and into is not None:
        return (
            f"waiting for your answer for {_span(into, now, cal)} "
            f"since their e-mail of {local_day(into, tz, now)}"
        )
    state = thread.state
    if state == ThreadState.QUIET and out is not None:
        return f"quiet for {_span(out, now, cal)} since your e-mail of {local_day(out, tz, now)}"
    if state == ThreadState.AWAITING_REPLY and out is not None:
        return f"{_span(out, now, cal)} since your e-mail of {local_day(out, tz, now)}"
    if state == ThreadState.REPLIED and into is not None:
        return f"they wrote on {local_day(into, tz, now)}"
    if state == ThreadState.SNOOZED and thread.snoozed_until is not None:
        return f"snoozed until {local_day(thread.snoozed_until, tz, now)}"
    latest = max((t for t in (out, into) if t is not None), default=None)
    return f"last e-mail {local_day(latest, tz, now)}" if latest else ""


def counterpart(rows: Sequence[Correspondence], own: frozenset[str]) -> Person | None:
    """The person the thread is with: the latest outside sender, else whom the rep wrote to."""
    for row in reversed(rows):
        if row.kind in _INBOUND and row.from_addr and row.from_addr not in own:
            return person_of(row.from_addr, row.from_name or "")
    names = {r.from_addr: r.from_name for r in rows if r.from_addr}
    for row in reversed(rows):
        if row.kind == MessageKind.OUTBOUND.value:
            for address in row.to_addrs or []:
                if address not in own:
                    return person_of(address, names.get(address) or "")
    for row in reversed(rows):
        if row.from_addr and row.from_addr not in own:
            return person_of(row.from_addr, row.from_name or "")
    return None


async def _lines(
    conn: AsyncConnection,
    threads: Sequence[ThreadRow],
    mailboxes: Mapping[int, mailbox_store.MailboxRow],
    now: datetime,
    known_drafts: Mapping[int, int | None] | None = None,
) -> list[ThreadLine]:
    """The threads as list rows; `known_drafts` are the drafts already read with them (the
    quiet ones' others are read here)."""
    ids = [t.id for t in threads]
    people = await store.people_of_threads(conn, ids)
    drafts = dict(known_drafts or {})
    unknown = [t.id for t in threads if t.state == ThreadState.QUIET and t.id not in drafts]
    drafts.update(await store.current_drafts(conn, unknown))
    setups: dict[int, tuple[Rules, WorkCalendar, frozenset[str]]] = {}
    lines = []
    for t in threads:
        mailbox = mailboxes[t.mailbox_id]
        if mailbox["id"] not in setups:  # once per mailbox, not per row
            rules = rules_of(mailbox)
            own = frozenset(a.lower() for a in mailbox["addresses"])
            setups[mailbox["id"]] = (rules, calendar_of(mailbox, now, rules), own)
        rules, cal, own = setups[mailbox["id"]]
        step, note = "", t.reason
        if t.state == ThreadState.QUIET:
            due = int(t.followups_sent) + 1
            step = f"follow-up {due} of {rules.max_followups}"
            if due == rules.max_followups:
                step += " — the last one: permission to say no"
            # The quiet reason's time and step are on the row already; keep the rest
            # (holidays skipped on the way).
            note = "; ".join(
                part for part in t.reason.split("; ")[1:] if not part.startswith("follow-up ")
            )
        lines.append(
            ThreadLine(
                id=t.id,
                mailbox_id=t.mailbox_id,
                mailbox_name=mailbox["name"],
                subject=t.subject or "(no subject)",
                state=t.state or "",
                reason=t.reason,
                note=note,
                needs_response=bool(t.needs_response),
                person=counterpart(people.get(t.id, []), own),
                waited=waited(t, cal, now),
                step=step,
                draft_id=drafts.get(t.id),
                timezone=mailbox["timezone"],
            )
        )
    return lines


async def dashboard(ctx: Context, *, user_id: int) -> Dashboard:
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        mailboxes = await mailbox_store.list_mailboxes(conn, user_id)
        by_id = {m["id"]: m for m in mailboxes}
        counts, owed_total = await store.count_by_state(conn, user_id=user_id)
        owed, quiet = await store.dashboard_threads(conn, user_id=user_id, limit=DASHBOARD_ROWS)
        owed.sort(key=lambda t: -t.thread.id)
        quiet.sort(key=lambda t: -t.thread.id)
        listed = owed + quiet
        lines = await _lines(
            conn, [t.thread for t in listed], by_id, now, {t.thread.id: t.draft_id for t in listed}
        )
    return Dashboard(
        owed=lines[: len(owed)],
        owed_total=owed_total,
        quiet=lines[len(owed) :],
        quiet_total=counts.get(ThreadState.QUIET.value, 0),
        counts=[StateCount(state=s.value, count=counts.get(s.value, 0)) for s in STATE_ORDER],
        mailboxes=mailboxes,
    )


async def thread_list(
    ctx: Context,
    *,
    user_id: int,
    state: ThreadState | None = None,
    needs_response: bool | None = None,
    mailbox_id: int | None = None,
    cursor: str | None = None,
    limit: int = PAGE_ROWS,
) -> ThreadList:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    before = decode_cursor("t", cursor) if cursor else None
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        by_id = {m["id"]: m for m in await mailbox_store.list_mailboxes(conn, user_id)}
        if mailbox_id is not None and mailbox_id not in by_id:
            mailbox_id = -1  # another user's mailbox: an empty list, nothing revealed
        rows = await store.list_threads_with_drafts(
            conn,
            user_id=user_id,
            mailbox_id=mailbox_id,
            state=state.value if state else None,
            needs_response=needs_response,
            before_id=before,
            limit=limit + 1,
        )
        page, more = split_page(rows, limit)
        lines = await _lines(
            conn, [t.thread for t in page], by_id, now, {t.thread.id: t.draft_id for t in page}
        )
    return ThreadList(
        lines=lines,
        next_cursor=encode_cursor("t", page[-1].thread.id) if more else None,
        mailboxes=[(m["id"], m["name"]) for m in by_id.values()],
    )


@dataclass(frozen=True, kw_only=True)
class MessageLine:
    """One message of a thread's timeline."""

    sender: Person | None
    own: bool  # written by the rep
    kind: str
    kind_reason: str
    thread_reason: str
    date: datetime
    subject: str
    to: list[str]
    folder: str


@dataclass(frozen=True, kw_only=True)
class ThreadPage:
    line: ThreadLine
    messages: list[MessageLine]
    drafts: list[ListedDraft]  # every draft of the thread, newest first
    snoozed_until: datetime | None
    closed_reason: str
    answered_note: str


async def thread_page(ctx: Context, *, user_id: int, thread_id: int) -> ThreadPage:
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        row = await store.get_thread(conn, thread_id, user_id=user_id)
        if row is None or row.state is None:
            raise NotFound(f"no thread {thread_id}")
        mailbox = await mailbox_store.get_mailbox(conn, row.mailbox_id, user_id=user_id)
        if mailbox is None:
            raise NotFound(f"no thread {thread_id}")
        line = (await _lines(conn, [row], {mailbox["id"]: mailbox}, now))[0]
        messages = (await store.messages_of_threads(conn, [thread_id]))[thread_id]
        where = await store.folders_of_messages(conn, [m.id for m in messages])
        drafts = await draft_store.list_drafts(
            conn,
            user_id=user_id,
            now=now,
            thread_id=thread_id,
            mailbox_id=None,
            state=None,
            before_id=None,
            limit=20,
        )
    own = frozenset(a.lower() for a in mailbox["addresses"])
    timeline = [
        MessageLine(
            sender=person_of(m.from_addr, m.from_name or "") if m.from_addr else None,
            own=m.kind == MessageKind.OUTBOUND.value or m.from_addr in own,
            kind=m.kind,
            kind_reason=m.kind_reason,
            thread_reason=m.thread_reason or "",
            date=m.date,
            subject=m.subject,
            to=list(m.to_addrs or []) + list(m.cc_addrs or []),
            folder=next(iter(where.get(m.id, [])), ""),
        )
        for m in messages
    ]
    return ThreadPage(
        line=line,
        messages=timeline,
        drafts=drafts,
        snoozed_until=row.snoozed_until,
        closed_reason=row.closed_reason or "",
        answered_note=row.answered_note or "",
    )


async def snooze_time(ctx: Context, *, user_id: int, thread_id: int, day: str) -> datetime:
    """When a thread's snooze picked as a date ends (see `morning_of`)."""
    async with reading(ctx.engine) as conn:
        row = await store.get_thread(conn, thread_id, user_id=user_id)
    if row is None:
        raise NotFound(f"no thread {thread_id}")
    return await morning_of(ctx, user_id=user_id, mailbox_id=row.mailbox_id, day=day)


async def morning_of(ctx: Context, *, user_id: int, mailbox_id: int, day: str) -> datetime:
    """The start of the working day `day` (YYYY-MM-DD) in the mailbox's zone, by its rules:
    when something set aside until a date comes back."""
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, mailbox_id, user_id=user_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    try:
        picked = date.fromisoformat(day)
    except ValueError:
        raise InvalidInput("pick the day it should come back, e.g. 2026-12-14") from None
    start = rules_of(mailbox).work_day_start
    return datetime.combine(picked, start, tzinfo=ZoneInfo(mailbox["timezone"]))


@dataclass(frozen=True, kw_only=True)
class DraftPage:
    draft: DraftDetailView  # as the API shows it
    question: str
    forwarded: str  # the text below the question: the rep's e-mail as it will appear
    line: ThreadLine | None  # its thread (None when the thread is gone)
    timezone: str
    imported: bool  # the mailbox came from a file: approving offers the .eml
    smtp_enabled: bool


async def draft_page(ctx: Context, *, user_id: int, draft_id: int) -> DraftPage:
    view = await drafts_service.get_draft(ctx, user_id=user_id, draft_id=draft_id)
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, view.mailbox_id, user_id=user_id)
        thread = await store.get_thread(conn, view.thread_id, user_id=user_id)
        settings = settings_of(await draft_store.get_settings(conn, view.mailbox_id))
        line = None
        if mailbox is not None and thread is not None and thread.state is not None:
            line = (await _lines(conn, [thread], {mailbox["id"]: mailbox}, now))[0]
    if mailbox is None:
        raise NotFound(f"no draft {draft_id}")
    text = view.text
    question = view.question or ""
    forwarded = text
    if question and text.startswith(question):
        forwarded = text[len(question) :].lstrip("\n")
    return DraftPage(
        draft=view,
        question=question,
        forwarded=forwarded,
        line=line,
        timezone=mailbox["timezone"],
        imported=mailbox["auth_method"] == mailbox_store.FILE_SOURCE,
        smtp_enabled=settings.smtp_enabled,
    )
