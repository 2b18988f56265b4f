"""Run the rules over threads and record what changed, with its events, in one transaction.

A batch is read with two indexed queries, decided in memory, and written back with one
executemany for the threads and one INSERT for the events, so its cost follows the batch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import date, datetime, time
from enum import Enum
from functools import lru_cache
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app import metrics
from app.calendars import work_calendar
from app.domain.events import thread_events, thread_payload
from app.domain.model import Decision, Rules, ThreadState
from app.domain.rules import decide
from app.domain.ruleset import rules_from_dict
from app.domain.worktime import WorkCalendar
from app.mail import crashpoint
from app.services.threads import decided_view
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage import outbox
from app.storage import threads as store
from app.storage.outbox import NewEvent
from app.storage.threads import (
    NO_MESSAGES,
    Decided,
    DecidedThread,
    DecisionInput,
    RuleMessage,
    RuleThread,
    ThreadRow,
    thread_history,
)

log = logging.getLogger(__name__)


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
    messages: DecisionInput
    decision: Decision
    user_id: int


async def decide_threads(
    conn: AsyncConnection,
    thread_rows: Sequence[RuleThread],
    now: datetime,
    *,
    messages: Mapping[int, DecisionInput] | None = None,
) -> list[Evaluated]:
    """Read what the rules need for a batch (its mailboxes, then every message of every
    thread in one query, unless `messages` has them already) and decide each thread. Reads
    only; `write_decisions` records them."""
    if not thread_rows:
        return []
    setups: dict[int, tuple[int, Rules, WorkCalendar] | None] = {}
    for row in await mailbox_store.get_mailboxes(conn, {t.mailbox_id for t in thread_rows}):
        rules = rules_of(row)
        setups[row["id"]] = (row["user_id"], rules, calendar_of(row, now, rules))
    if messages is None:
        messages = await store.messages_for_decisions(conn, [t.id for t in thread_rows])
    out: list[Evaluated] = []
    for thread in thread_rows:
        setup = setups.get(thread.mailbox_id)
        if setup is None:  # its mailbox is gone (deleted meanwhile): nothing to decide
            continue
        user_id, rules, calendar = setup
        read = messages.get(thread.id, NO_MESSAGES)
        decision = decide(thread_history(thread, read.messages), rules, calendar, now)
        out.append(Evaluated(thread=thread, messages=read, decision=decision, user_id=user_id))
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
        thread, read, decision = item.thread, item.messages, item.decision
        decided = Decided(
            state=decision.state.value,
            reason=decision.reason,
            needs_response=decision.needs_response,
            next_check_at=decision.next_check_at,
            followups_sent=decision.followups_sent,
            last_outbound_at=read.last_outbound_at,
            last_inbound_at=read.last_inbound_at,
            subject=thread.subject if read.subject is None else read.subject,
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
            view = decided_view(thread, decided, read.shown_ids, at=now)
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
    messages: Mapping[int, DecisionInput] | None = None,
) -> int:
    """Decide each thread; write every decision and the events of the changes. Returns how
    many threads changed state."""
    decided = await decide_threads(conn, thread_rows, now, messages=messages)
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
    messages = await store.messages_for_decisions(conn, [r.id for r in rows])
    # A thread is never decided on a header whose body is still to be read (a bounce not yet
    # joined, an auto-reply's return date, a decline): it waits, and the body's reading
    # makes it due again. Counted as looked at, so that the callers' loops move on. Asked
    # only of threads with an answer whose body facts are missing: usually none.
    maybe = [r.id for r in rows if messages.get(r.id, NO_MESSAGES).may_await_body]
    held = await message_store.threads_awaiting_body(conn, maybe)
    if held:
        # In a baseline, a state shown early is taken back: the thread is decided (and
        # announced, as if first seen) only once its body is read.
        await store.hold_for_bodies(conn, held, forget_state=announce is not Announce.CHANGES)
        rows_now = [r for r in rows if r.id not in held]
    else:
        rows_now = rows
    await evaluate_threads(conn, rows_now, now, announce=announce, messages=messages)
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
    it and leaves its baseline in one transaction: a crash before the commit leaves it a
    baseline to resume, and each thread is announced as if first seen, so the only events
    are the `thread.quiet` announcements of the threads quiet at its end. Returns how many
    threads ran."""
    async with engine.begin() as conn:
        now = clock()
        # First the quiet threads whose early decision holds (announced, not decided again):
        # then nothing of theirs is dirty or due, and the loop below passes them by.
        evaluated = await _announce_holding(conn, mailbox_id, now)
        while batch := await evaluate_due(
            conn,
            now,
            mailbox_id=mailbox_id,
            limit=BASELINE_BATCH,
            announce=Announce.AS_FIRST_SEEN,
        ):
            evaluated += batch
        await mailbox_store.update_mailbox(conn, mailbox_id, {"baseline": False}, now=clock())
    log.info("sync.baseline_done mailbox=%s threads=%s", mailbox_id, evaluated)
    return evaluated


# A baseline's end is one transaction anyway: bigger batches, fewer statements.
BASELINE_BATCH = 5000


async def _announce_holding(conn: AsyncConnection, mailbox_id: int, now: datetime) -> int:
    """Announce, as first seen, the mailbox's threads that `decide_early` found quiet and
    that nothing changed since (no mail, no check due): `decide` would answer the same now,
    as the scheduler also relies on (it looks again only at dirty or due threads). Written
    as a decision that changes nothing is (the row stamped, not dirty), so their events
    read exactly as if decided again. Returns how many."""
    mailbox = await mailbox_store.get_mailbox(conn, mailbox_id)
    if mailbox is None:
        return 0
    announced = after_id = 0
    quiet = ThreadState.QUIET
    while rows := await store.holding_in_state(
        conn, mailbox_id, quiet.value, now=now, after_id=after_id, limit=BASELINE_BATCH
    ):
        after_id = rows[-1].id
        ids = await store.message_ids_by_thread(conn, [r.id for r in rows])
        held = [
            Evaluated(
                thread=row,
                # What the decision's columns took of the messages is on the row already.
                messages=DecisionInput(
                    messages=(),  # not read: the rules do not run again
                    shown_ids=ids.get(row.id, []),
                    subject=row.subject,
                    last_outbound_at=row.last_outbound_at,
                    last_inbound_at=row.last_inbound_at,
                ),
                decision=Decision(
                    state=quiet,
                    reason=row.reason,
                    next_check_at=row.next_check_at,
                    needs_response=row.needs_response,
                    followups_sent=row.followups_sent,
                ),
                user_id=mailbox["user_id"],
            )
            for row in rows
        ]
        await write_decisions(conn, held, now, announce=Announce.AS_FIRST_SEEN)
        announced += len(held)
    return announced
