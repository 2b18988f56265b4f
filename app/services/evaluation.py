"""Run the rules over threads and record what changed, with its events, in one transaction.

A batch is read with two indexed queries, decided in memory, and written back with one
executemany for the threads and one INSERT for the events, so its cost follows the batch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime, time
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import metrics
from app.calendars import work_calendar
from app.domain.events import thread_events, thread_payload
from app.domain.model import Decision, MessageKind, Rules, ThreadState
from app.domain.rules import decide
from app.domain.ruleset import rules_from_dict
from app.domain.worktime import WorkCalendar
from app.mail import crashpoint
from app.services.threads import decided_view, shown_ids
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage import outbox
from app.storage import threads as store
from app.storage.outbox import NewEvent
from app.storage.threads import (
    Decided,
    DecidedThread,
    RuleMessage,
    RuleThread,
    ThreadRow,
    history_of,
)

log = logging.getLogger(__name__)
_INBOUND = frozenset({MessageKind.REPLY, MessageKind.AUTO_REPLY, MessageKind.BOUNCE})


def rules_of(mailbox: mailbox_store.MailboxRow) -> Rules:
    """The mailbox's stored rules; a row edited by hand into nonsense falls back to the
    defaults (logged) rather than stopping the scheduler for every mailbox."""
    try:
        return rules_from_dict(mailbox.get("rules"))
    except ValueError as exc:
        log.warning("rules.invalid_stored mailbox=%s error=%s", mailbox.get("id"), exc)
        return Rules()


def calendar_of(
    mailbox: mailbox_store.MailboxRow,
    now: datetime,
    rules: Rules | None = None,
    *,
    since: date | None = None,
) -> WorkCalendar:
    """The mailbox's business calendar around `now` (back to `since`, for a replay), with the
    working hours of its rules."""
    rules = rules or rules_of(mailbox)
    return _calendar(
        mailbox["timezone"],
        mailbox["holiday_country"],
        mailbox["holiday_subdiv"],
        (since.year if since else now.year) - 1,
        now.year + 1,
        rules.work_day_start,
        rules.work_day_end,
    )


@lru_cache(maxsize=256)
def _calendar(
    timezone: str,
    country: str | None,
    subdiv: str | None,
    first_year: int,
    last_year: int,
    start: time,
    end: time,
) -> WorkCalendar:
    # Cached: building one walks three years of days, and every batch needs it.
    return work_calendar(
        timezone=timezone,
        country=country,
        subdiv=subdiv,
        years=range(first_year, last_year + 1),
        day_start=start,
        day_end=end,
    )


async def thread_pages(
    conn: AsyncConnection, mailbox_id: int
) -> AsyncIterator[tuple[list[ThreadRow], dict[int, list[RuleMessage]]]]:
    """Every thread of a mailbox with its messages, a page at a time (memory stays bounded)."""
    after_id = 0
    while page := await store.threads_of_mailbox(conn, mailbox_id, after_id=after_id):
        after_id = page[-1].id
        yield page, await store.messages_for_rules(conn, [t.id for t in page])


class Announce(Enum):
    """Which events a batch of decisions emits."""

    CHANGES = "changes"  # each change of state (the scheduler, a sync after the first)
    AS_FIRST_SEEN = "as_first_seen"  # as if no state was known: a baseline's end
    NOTHING = "nothing"  # a state shown early during a first sync


class Evaluated(NamedTuple):
    """One thread of a batch, decided, not yet written (a tuple: a batch makes a thousand)."""

    thread: RuleThread
    messages: list[RuleMessage]
    decision: Decision
    user_id: int


async def decide_threads(
    conn: AsyncConnection, thread_rows: Sequence[RuleThread], now: datetime
) -> list[Evaluated]:
    """Read what the rules need for a batch (its mailboxes, then every message of every
    thread in one query) and decide each thread. Reads only; `write_decisions` records them."""
    if not thread_rows:
        return []
    setups: dict[int, tuple[int, Rules, WorkCalendar] | None] = {}
    for row in await mailbox_store.get_mailboxes(conn, {t.mailbox_id for t in thread_rows}):
        rules = rules_of(row)
        setups[row["id"]] = (row["user_id"], rules, calendar_of(row, now, rules))
    messages = await store.messages_for_rules(conn, [t.id for t in thread_rows])
    out: list[Evaluated] = []
    for thread in thread_rows:
        setup = setups.get(thread.mailbox_id)
        if setup is None:  # its mailbox is gone (deleted meanwhile): nothing to decide
            continue
        user_id, rules, calendar = setup
        rows = messages.get(thread.id, [])
        decision = decide(history_of(thread, rows), rules, calendar, now)
        out.append(Evaluated(thread=thread, messages=rows, decision=decision, user_id=user_id))
    return out


async def write_decisions(
    conn: AsyncConnection,
    batch: Sequence[Evaluated],
    now: datetime,
    *,
    announce: Announce = Announce.CHANGES,
) -> int:
    """Write each decision (only the columns it changes, one executemany per set of them)
    and the events of the changes (one INSERT), as `announce` says. Returns how many threads
    changed state."""
    writes: list[DecidedThread] = []
    news: list[NewEvent] = []
    changed = 0
    for item in batch:
        thread, rows, decision = item.thread, item.messages, item.decision
        last_out: datetime | None = None
        last_in: datetime | None = None
        for r in rows:
            kind, when = r.kind, r.date
            if kind == MessageKind.OUTBOUND:
                last_out = when if last_out is None or when > last_out else last_out
            elif kind in _INBOUND:
                last_in = when if last_in is None or when > last_in else last_in
        decided = Decided(
            state=decision.state.value,
            reason=decision.reason,
            needs_response=decision.needs_response,
            next_check_at=decision.next_check_at,
            followups_sent=decision.followups_sent,
            last_outbound_at=last_out,
            last_inbound_at=last_in,
            subject=rows[0].subject if rows else thread.subject,
        )
        writes.append(DecidedThread(thread, decided))
        old_state = ThreadState(thread.state) if thread.state else None
        if decision.state != old_state:
            changed += 1
        if announce is Announce.NOTHING:
            continue
        first = announce is Announce.AS_FIRST_SEEN  # a state shown early is not announced yet
        events = thread_events(
            old_state=None if first else old_state,
            new_state=decision.state,
            old_needs_response=False if first else bool(thread.needs_response),
            new_needs_response=decision.needs_response,
        )
        if events:
            view = decided_view(thread, decided, shown_ids(rows), at=now)
            payload = thread_payload(view.as_json())
            news.extend(
                NewEvent(
                    user_id=item.user_id,
                    type=event.value,
                    payload=payload,
                    mailbox_id=thread.mailbox_id,
                    thread_id=thread.id,
                )
                for event in events
            )
    await store.save_decisions(conn, writes, now=now)
    await outbox.enqueue_many(conn, news, now=now)
    return changed


async def evaluate_threads(
    conn: AsyncConnection,
    thread_rows: Sequence[RuleThread],
    now: datetime,
    *,
    announce: Announce = Announce.CHANGES,
) -> int:
    """Decide each thread; write every decision and the events of the changes. Returns how
    many threads changed state."""
    decided = await decide_threads(conn, thread_rows, now)
    return await write_decisions(conn, decided, now, announce=announce)


async def evaluate_due(
    conn: AsyncConnection,
    now: datetime,
    *,
    mailbox_id: int | None = None,
    limit: int = 1000,
    announce: Announce = Announce.CHANGES,
) -> int:
    """Evaluate threads with new mail or whose next check has come. Returns how many were
    looked at (those waiting for a body included). Three steps, which `bench/rules_bench.py`
    times one by one: find, decide, write."""
    rows = await store.threads_to_evaluate(conn, now=now, mailbox_id=mailbox_id, limit=limit)
    # A thread is never decided on a header whose body is still to be read (a bounce not yet
    # joined, an auto-reply's return date, a decline): it waits, and the body's reading
    # makes it due again. Counted as looked at, so that the callers' loops move on.
    held = await message_store.threads_awaiting_body(conn, [r.id for r in rows])
    if held:
        # In a baseline, a state shown early is taken back: the thread is decided (and
        # announced, as if first seen) only once its body is read.
        await store.hold_for_bodies(conn, held, forget_state=announce is not Announce.CHANGES)
        rows_now = [r for r in rows if r.id not in held]
    else:
        rows_now = rows
    await evaluate_threads(conn, rows_now, now, announce=announce)
    metrics.THREADS_EVALUATED.inc(len(rows_now))  # both the scheduler and the syncs come here
    return len(rows)


async def evaluate_mailbox(
    engine: AsyncEngine, clock: Callable[[], datetime], mailbox_id: int
) -> int:
    """Evaluate everything due in one mailbox, one transaction per batch, so that the write
    lock is never held for long. Returns how many threads ran."""
    evaluated = 0
    while True:
        async with engine.begin() as conn:
            batch = await evaluate_due(conn, clock(), mailbox_id=mailbox_id)
        if not batch:
            return evaluated
        evaluated += batch


async def decide_early(engine: AsyncEngine, clock: Callable[[], datetime], mailbox_id: int) -> int:
    """During a first sync (after each batch it stores): decide the threads with new mail so
    that the rep sees them while older mail is still read, announcing nothing: `end_baseline`
    announces what holds at the end. A batch per transaction; returns how many ran."""
    evaluated = 0
    while True:
        async with engine.begin() as conn:
            batch = await evaluate_due(
                conn, clock(), mailbox_id=mailbox_id, announce=Announce.NOTHING
            )
            crashpoint.decisions_stored()
        if not batch:
            return evaluated
        evaluated += batch


async def end_baseline(engine: AsyncEngine, clock: Callable[[], datetime], mailbox_id: int) -> int:
    """A first sync that has read everything decides what changed since `decide_early` saw
    it (and every quiet thread again) and leaves its baseline in one transaction: a crash
    before the commit leaves it a baseline to resume, and each thread is announced as if
    first seen, so the only events are the `thread.quiet` announcements of the threads quiet
    at its end. Returns how many threads ran."""
    evaluated = 0
    async with engine.begin() as conn:
        now = clock()
        await store.mark_dirty_in_state(conn, mailbox_id, ThreadState.QUIET.value)
        while batch := await evaluate_due(
            conn, now, mailbox_id=mailbox_id, announce=Announce.AS_FIRST_SEEN
        ):
            evaluated += batch
        await mailbox_store.update_mailbox(conn, mailbox_id, {"baseline": False}, now=clock())
    log.info("sync.baseline_done mailbox=%s threads=%s", mailbox_id, evaluated)
    return evaluated
