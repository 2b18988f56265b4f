"""Thread rows: listing with keyset pagination, the timeline, and what is due for the rules."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from enum import Enum
from functools import lru_cache
from itertools import groupby
from operator import attrgetter
from typing import Any, Final, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    Dialect,
    bindparam,
    false,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import NullType

from app.domain.model import MessageKind, ThreadHistory, ThreadMessage, cheap_init
from app.storage.common import driver_sql, flag_value, time_value
from app.storage.drafts import waiting_for
from app.storage.stored_messages import message_of_columns, thread_message
from app.storage.tables import drafts, folders, mailboxes, message_locations, messages, threads


@cheap_init  # one per thread the rules look at (see domain.model.cheap_init)
@dataclass(frozen=True, kw_only=True)
class RuleThread:
    """What the rules and the events read of a thread (`threads_to_evaluate`'s rows)."""

    id: int
    mailbox_id: int
    subject: str
    state: str | None  # None until the rules have looked at it once
    reason: str
    needs_response: bool
    last_outbound_at: datetime | None
    last_inbound_at: datetime | None
    next_check_at: datetime | None
    followups_sent: int
    snoozed_until: datetime | None
    closed_reason: str | None
    answered_at: datetime | None
    answered_note: str | None
    reopened_at: datetime | None


@cheap_init  # its own __init__: the base's sets only the base's fields
@dataclass(frozen=True, kw_only=True)
class ThreadRow(RuleThread):
    """A whole `threads` row."""

    user_id: int
    subject_key: str | None
    dirty: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DraftedThread:
    """A listed thread with the draft it waits for now, if any."""

    thread: ThreadRow
    draft_id: int | None


@cheap_init  # one per thread decided
@dataclass(frozen=True, kw_only=True)
class Decided:
    """What the rules decided for a thread, as its columns hold it."""

    state: str
    reason: str
    needs_response: bool
    next_check_at: datetime | None
    followups_sent: int
    last_outbound_at: datetime | None
    last_inbound_at: datetime | None
    subject: str


_DECIDED_FIELDS: Final = tuple(f.name for f in fields(Decided))
# A row's or a decision's values of those columns, as one tuple (one call, not eight).
_decided_of: Final = attrgetter(*_DECIDED_FIELDS)


@dataclass(frozen=True, slots=True)
class DecidedThread:
    """A decision to write: the thread as it was read, and what it is now."""

    thread: RuleThread
    decided: Decided


_T = TypeVar("_T")


class _Keep(Enum):
    KEEP = "keep"


KEEP: Final = _Keep.KEEP  # a ThreadPatch field left as the thread has it


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPatch:
    """What the rep decided by hand; a field left at KEEP is not written."""

    snoozed_until: datetime | Literal[_Keep.KEEP] | None = KEEP
    closed_reason: str | Literal[_Keep.KEEP] | None = KEEP
    answered_at: datetime | Literal[_Keep.KEEP] | None = KEEP
    answered_note: str | Literal[_Keep.KEEP] | None = KEEP
    reopened_at: datetime | Literal[_Keep.KEEP] | None = KEEP

    def values(self) -> dict[str, object]:
        """The columns to write, by name."""
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not KEEP}

    def applied_to(self, thread: ThreadRow) -> ThreadRow:
        """The thread as it reads once the patch is written."""
        return replace(
            thread,
            snoozed_until=_kept(self.snoozed_until, thread.snoozed_until),
            closed_reason=_kept(self.closed_reason, thread.closed_reason),
            answered_at=_kept(self.answered_at, thread.answered_at),
            answered_note=_kept(self.answered_note, thread.answered_note),
            reopened_at=_kept(self.reopened_at, thread.reopened_at),
        )


def _kept(new: _T | Literal[_Keep.KEEP], old: _T) -> _T:
    return old if isinstance(new, _Keep) else new


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleMessage:
    """What the rules and the events read of a message (`messages_for_rules`' rows)."""

    thread_id: int
    message_key: str
    has_message_id: bool
    kind: str
    date: datetime
    from_addr: str
    from_name: str
    to_addrs: list[str]
    cc_addrs: list[str]
    # JSON: what reading the body found; its keys grow with the classifier (open shape).
    details: dict[str, Any] | None
    subject: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageRow(RuleMessage):
    """A message as a timeline and a follow-up read it (`messages_of_threads`' rows)."""

    id: int
    mailbox_id: int
    in_reply_to: list[str]
    references: list[str]
    kind_reason: str
    thread_reason: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Correspondence:
    """Who wrote to whom in one message of a thread (`people_of_threads`' rows)."""

    kind: str
    from_addr: str
    from_name: str
    to_addrs: list[str]
    date: datetime


def history_of(thread: RuleThread, rows: Sequence[RuleMessage]) -> ThreadHistory:
    """A stored thread and its messages (oldest first) as the rules see them."""
    return thread_history(thread, tuple(map(thread_message, rows)))


def thread_history(thread: RuleThread, messages: tuple[ThreadMessage, ...]) -> ThreadHistory:
    """A stored thread with its messages, already as the rules see them (oldest first)."""
    return ThreadHistory(
        messages=messages,
        snoozed_until=thread.snoozed_until,
        closed_reason=thread.closed_reason,
        answered_at=thread.answered_at,
        answered_note=thread.answered_note,
        reopened_at=thread.reopened_at,
    )


def _thread_row(m: RowMapping) -> ThreadRow:
    return ThreadRow(
        id=m["id"],
        mailbox_id=m["mailbox_id"],
        user_id=m["user_id"],
        subject=m["subject"],
        subject_key=m["subject_key"],
        state=m["state"],
        reason=m["reason"],
        needs_response=m["needs_response"],
        last_outbound_at=m["last_outbound_at"],
        last_inbound_at=m["last_inbound_at"],
        next_check_at=m["next_check_at"],
        followups_sent=m["followups_sent"],
        snoozed_until=m["snoozed_until"],
        closed_reason=m["closed_reason"],
        dirty=m["dirty"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        answered_at=m["answered_at"],
        answered_note=m["answered_note"],
        reopened_at=m["reopened_at"],
    )


async def list_threads(
    conn: AsyncConnection,
    *,
    user_id: int,
    mailbox_id: int | None,
    state: str | None,
    before_id: int | None,
    limit: int,
    needs_response: bool | None = None,
) -> list[ThreadRow]:
    """Newest threads first; `before_id` is the keyset cursor (ids only grow)."""
    query = _listing(select(threads), user_id, mailbox_id, state, before_id, limit, needs_response)
    return [_thread_row(r) for r in (await conn.execute(query)).mappings()]


async def list_threads_with_drafts(
    conn: AsyncConnection,
    *,
    user_id: int,
    mailbox_id: int | None,
    state: str | None,
    before_id: int | None,
    limit: int,
    needs_response: bool | None = None,
) -> list[DraftedThread]:
    """As `list_threads`, each with the draft it waits for now, if any."""
    query = _listing(
        select(*threads.c, _current_draft().label("draft_id")),
        user_id,
        mailbox_id,
        state,
        before_id,
        limit,
        needs_response,
    )
    return [
        DraftedThread(_thread_row(r), r["draft_id"]) for r in (await conn.execute(query)).mappings()
    ]


def _listing(
    query: Any,
    user_id: int,
    mailbox_id: int | None,
    state: str | None,
    before_id: int | None,
    limit: int,
    needs_response: bool | None,
) -> Any:
    query = query.where(threads.c.user_id == user_id, threads.c.state.is_not(None))
    if needs_response is not None:
        query = query.where(threads.c.needs_response == needs_response)
    if mailbox_id is not None:
        query = query.where(threads.c.mailbox_id == mailbox_id)
    if state is not None:
        query = query.where(threads.c.state == state)
    if before_id is not None:
        query = query.where(threads.c.id < before_id)
    return query.order_by(threads.c.id.desc()).limit(limit)


@lru_cache(maxsize=1)
def _current_draft() -> Any:
    """The id of the draft the (outer) thread waits for now (see drafts.waiting_for).
    Built once: the pages read it on every request."""
    return (
        select(func.max(drafts.c.id))
        .where(
            drafts.c.thread_id == threads.c.id,
            drafts.c.state != "dismissed",
            waiting_for(drafts.c.step, made_at=drafts.c.created_at),
        )
        .scalar_subquery()
    )


@lru_cache(maxsize=1)
def _counts_query() -> Any:
    user: Any = bindparam("user_id")
    owed = (
        select(func.count())
        .where(threads.c.user_id == user, threads.c.needs_response == true())
        .scalar_subquery()
    )
    return (
        select(threads.c.state, func.count(), owed)
        .where(threads.c.user_id == user, threads.c.state.is_not(None))
        .group_by(threads.c.state)
    )


async def current_drafts(conn: AsyncConnection, thread_ids: Sequence[int]) -> dict[int, int]:
    """The draft each thread waits for now (as `list_threads_with_drafts` reads it), by
    thread id; threads without one are left out."""
    if not thread_ids:
        return {}
    query = select(threads.c.id, _current_draft()).where(threads.c.id.in_(thread_ids))
    return {int(t): int(d) for t, d in await conn.execute(query) if d is not None}


async def count_by_state(conn: AsyncConnection, *, user_id: int) -> tuple[dict[str, int], int]:
    """How many of the user's threads are in each state (from the (user, state) index alone),
    and how many owe an answer (from the partial index of those), in one statement."""
    counts, owing = {}, 0
    for state, n, o in await conn.execute(_counts_query(), {"user_id": user_id}):
        counts[str(state)] = int(n)
        owing = int(o or 0)
    return counts, owing


@lru_cache(maxsize=1)
def _dashboard_query() -> Any:
    # Built once, with its values bound at each call: building two subqueries of every
    # column costs more than running them (5 ms against 0.2 ms for a dashboard).
    base = [*threads.c, _current_draft().label("draft_id")]
    user: Any = bindparam("user_id")
    limit: Any = bindparam("limit")
    owed = (
        select(*base, literal(0).label("section"))
        .where(threads.c.user_id == user, threads.c.needs_response == true())
        .order_by(threads.c.id.desc())
        .limit(limit)
        .subquery()
    )
    quiet = (
        select(*base, literal(1).label("section"))
        .where(threads.c.user_id == user, threads.c.state == "quiet")
        .order_by(threads.c.id.desc())
        .limit(limit)
        .subquery()
    )
    return union_all(select(owed), select(quiet))


async def dashboard_threads(
    conn: AsyncConnection, *, user_id: int, limit: int
) -> tuple[list[DraftedThread], list[DraftedThread]]:
    """The newest threads that owe the rep an answer, and the newest quiet ones with their
    current draft: one round trip for both lists."""
    sections: tuple[list[DraftedThread], list[DraftedThread]] = ([], [])
    rows = await conn.execute(_dashboard_query(), {"user_id": user_id, "limit": limit})
    for row in rows.mappings():
        sections[row["section"]].append(DraftedThread(_thread_row(row), row["draft_id"]))
    return sections


async def people_of_threads(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[Correspondence]]:
    """Who wrote to whom in each thread, oldest first: what a list shows of its people."""
    out: dict[int, list[Correspondence]] = defaultdict(list)
    if not thread_ids:
        return out
    query = (
        select(
            messages.c.thread_id,
            messages.c.kind,
            messages.c.from_addr,
            messages.c.from_name,
            messages.c.to_addrs,
            messages.c.date,
        )
        .where(messages.c.thread_id.in_(thread_ids))
        .order_by(messages.c.thread_id, messages.c.date, messages.c.id)
    )
    for thread_id, kind, from_addr, from_name, to_addrs, sent in await conn.execute(query):
        out[int(thread_id)].append(
            Correspondence(
                kind=kind, from_addr=from_addr, from_name=from_name, to_addrs=to_addrs, date=sent
            )
        )
    return out


async def get_thread(conn: AsyncConnection, thread_id: int, *, user_id: int) -> ThreadRow | None:
    query = select(threads).where(threads.c.id == thread_id, threads.c.user_id == user_id)
    row = (await conn.execute(query)).mappings().first()
    return _thread_row(row) if row else None


async def message_ids_by_thread(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[str]]:
    """Each thread's Message-IDs, oldest first (synthetic keys are not Message-IDs: skipped)."""
    out: dict[int, list[str]] = defaultdict(list)
    if not thread_ids:
        return out
    query = (
        select(messages.c.thread_id, messages.c.message_key)
        .where(messages.c.thread_id.in_(thread_ids), messages.c.has_message_id)
        .order_by(messages.c.thread_id, messages.c.date, messages.c.id)
    )
    for thread_id, key in await conn.execute(query):
        out[int(thread_id)].append(key)
    return out


async def messages_of_threads(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[MessageRow]]:
    """Message rows per thread, oldest first (what timelines and follow-ups read of them)."""
    out: dict[int, list[MessageRow]] = defaultdict(list)
    if not thread_ids:
        return out
    query = (
        select(*(messages.c[f.name] for f in fields(MessageRow)))
        .where(messages.c.thread_id.in_(thread_ids))
        .order_by(messages.c.thread_id, messages.c.date, messages.c.id)
    )
    for row in (await conn.execute(query)).mappings():
        out[int(row["thread_id"])].append(MessageRow(**row))  # the columns are its fields
    return out


# The scheduler's reads (the due threads, then their messages) are its hottest path, so
# they skip SQLAlchemy's per-value result processing (type_coerce to NullType: the value
# as the driver returns it) and decode the few typed columns themselves, below. Measured on
# 2,000 message rows: 14 ms with the column types, 6 ms without. The decoders accept what
# either driver returns: text from SQLite, decoded values from asyncpg.
_AS_DRIVER_RETURNS = NullType()


def _raw(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return type_coerce(column, _AS_DRIVER_RETURNS)


def _utc(value: Any) -> datetime | None:
    """A `UTCDateTime` value: SQLite's naive-UTC text or asyncpg's aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:  # the stored form: naive UTC (appending the offset beats .replace(tzinfo=) 9x)
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:  # text that carries an offset already
            value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_json_prefix = json.JSONDecoder().raw_decode


def _json(value: Any) -> Any:
    """A JSON value: SQLite's text or what asyncpg's codec already decoded."""
    if not isinstance(value, str):
        return value
    if value == "[]":
        return []
    try:  # a quarter of json.loads' time: no whitespace stripping, no wrapper
        decoded, end = _json_prefix(value)
    except ValueError:
        return json.loads(value)  # leading whitespace, or not JSON (raises the usual error)
    return decoded if end == len(value) else json.loads(value)


_RULE_MESSAGE_COLUMNS = (
    messages.c.thread_id,
    messages.c.message_key,
    messages.c.has_message_id,
    messages.c.kind,
    messages.c.date,
    messages.c.from_addr,
    messages.c.from_name,
    messages.c.to_addrs,
    messages.c.cc_addrs,
    messages.c.details,
    messages.c.subject,
)


async def _rule_message_rows(conn: AsyncConnection, thread_ids: Sequence[int]) -> Any:
    """The rules' messages of `thread_ids`, grouped by thread, oldest first (raw values)."""
    m = messages.c
    return await conn.execute(
        select(*(_raw(c) for c in _RULE_MESSAGE_COLUMNS))
        .where(m.thread_id.in_(thread_ids))
        .order_by(m.thread_id, m.date, m.id)
    )


async def messages_for_rules(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, list[RuleMessage]]:
    """Per thread, oldest first, only the columns the rules and the events read, in one
    query (decoded as `_utc` and `_json` say, not by SQLAlchemy: see above)."""
    out: dict[int, list[RuleMessage]] = defaultdict(list)
    if not thread_ids:
        return out
    for (
        thread_id,
        key,
        has_id,
        kind,
        sent,
        sender,
        name,
        to,
        cc,
        details,
        subject,
    ) in await _rule_message_rows(conn, thread_ids):
        out[int(thread_id)].append(
            RuleMessage(
                thread_id=thread_id,
                message_key=key,
                has_message_id=bool(has_id),
                kind=kind,
                date=_utc(sent),  # type: ignore[arg-type]  # the column is NOT NULL
                from_addr=sender,
                from_name=name,
                to_addrs=_json(to),
                cc_addrs=_json(cc),
                details=_json(details),
                subject=subject,
            )
        )
    return out


@cheap_init  # one per thread decided
@dataclass(frozen=True, kw_only=True)
class DecisionInput:
    """A thread's messages as one decision reads them (`messages_for_decisions`' values):
    for the rules, and the few things its columns and its event take of them."""

    messages: tuple[ThreadMessage, ...]  # oldest first, as the rules see them
    shown_ids: list[str]  # the Message-IDs, oldest first (synthetic keys are not)
    subject: str | None  # the oldest message's (None: no messages)
    last_outbound_at: datetime | None
    last_inbound_at: datetime | None
    # An answer without body facts yet: only then can the thread wait for a body, which
    # `messages.threads_awaiting_body` then asks (most batches need not ask at all).
    may_await_body: bool = False


NO_MESSAGES: Final = DecisionInput(
    messages=(), shown_ids=[], subject=None, last_outbound_at=None, last_inbound_at=None
)
_INBOUND: Final = frozenset({MessageKind.REPLY, MessageKind.AUTO_REPLY, MessageKind.BOUNCE})


async def messages_for_decisions(
    conn: AsyncConnection, thread_ids: Sequence[int]
) -> dict[int, DecisionInput]:
    """`messages_for_rules` for the scheduler and a baseline's end: the same one query, but
    each row goes straight to the rules' `ThreadMessage` (no `RuleMessage` in between: that
    second object per message cost a tenth of deciding) and the summaries are taken in the
    same pass."""
    if not thread_ids:
        return {}
    rows = await _rule_message_rows(conn, thread_ids)
    return {int(thread_id): _decision_input(group) for thread_id, group in groupby(rows, _first)}


def _first(row: Sequence[Any]) -> Any:
    return row[0]


def _decision_input(rows: Iterable[Sequence[Any]]) -> DecisionInput:
    """One thread's rows (`_RULE_MESSAGE_COLUMNS`), oldest first."""
    items: list[ThreadMessage] = []
    shown: list[str] = []
    first_subject: str | None = None
    last_out: datetime | None = None
    last_in: datetime | None = None
    unread = False
    for _, key, has_id, kind, sent, sender, name, to, cc, details, subject in rows:
        message = message_of_columns(
            key,
            kind,
            _utc(sent),  # type: ignore[arg-type]  # the column is NOT NULL
            sender,
            name,
            _json(to),
            _json(cc),
            _json(details),
        )
        if not items:
            first_subject = subject
        items.append(message)
        if has_id:
            shown.append(key)
        # Oldest first: the last one seen of a kind is the latest.
        if message.kind is MessageKind.OUTBOUND:
            last_out = message.date
        elif message.kind in _INBOUND:
            last_in = message.date
            unread = unread or details is None  # as messages._UNREAD says
    return DecisionInput(
        messages=tuple(items),
        shown_ids=shown,
        subject=first_subject,
        last_outbound_at=last_out,
        last_inbound_at=last_in,
        may_await_body=unread,
    )


async def folders_of_messages(
    conn: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, list[str]]:
    out: dict[int, list[str]] = defaultdict(list)
    if not message_ids:
        return out
    query = (
        select(message_locations.c.message_id, folders.c.name)
        .join(folders, folders.c.id == message_locations.c.folder_id)
        .where(message_locations.c.message_id.in_(message_ids))
        .order_by(folders.c.name)
    )
    for message_id, name in await conn.execute(query):
        if name not in out[int(message_id)]:
            out[int(message_id)].append(name)
    return out


async def threads_to_evaluate(
    conn: AsyncConnection, *, now: datetime, mailbox_id: int | None = None, limit: int = 1000
) -> list[RuleThread]:
    """Threads with new mail (dirty) or whose time has come (next_check_at), oldest due first.

    Two lookups, each served by its own index (the partial one on dirty rows and the one on
    next_check_at), so the cost follows what is due, not what is stored; an OR of the two
    would make the planner scan. On PostgreSQL the rows are locked and rows another scheduler
    holds are skipped, so two workers never evaluate the same thread at once.
    """
    columns = [_raw(c) for c in _RULE_THREAD_COLUMNS]
    dirty = select(*columns).where(threads.c.dirty == true())
    due = select(*columns).where(threads.c.next_check_at <= now)
    if mailbox_id is not None:  # a sync deciding its own mailbox (its baseline included)
        dirty = dirty.where(threads.c.mailbox_id == mailbox_id)
        due = due.where(threads.c.mailbox_id == mailbox_id)
    else:  # the scheduler: never a mailbox whose first sync has not read everything yet
        dirty = dirty.where(_settled())
        due = due.where(_settled())
    rows = _rule_threads(
        await conn.execute(
            # (mailbox_id, id) is the partial index's order: a scan of dirty rows only.
            dirty.order_by(threads.c.mailbox_id, threads.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=threads)
        )
    )
    if len(rows) < limit:
        seen = {r.id for r in rows}
        # `limit` rows: enough to fill the batch even when every dirty one shows up again.
        query = due.order_by(threads.c.next_check_at).limit(limit)
        for r in _rule_threads(
            await conn.execute(query.with_for_update(skip_locked=True, of=threads))
        ):
            if r.id not in seen and len(rows) < limit:
                rows.append(r)
    return rows


# What the rules and the events read of a thread (threads_to_evaluate's rows).
_RULE_THREAD_COLUMNS = (
    threads.c.id,
    threads.c.mailbox_id,
    threads.c.subject,
    threads.c.state,
    threads.c.reason,
    threads.c.needs_response,
    threads.c.last_outbound_at,
    threads.c.last_inbound_at,
    threads.c.next_check_at,
    threads.c.followups_sent,
    threads.c.snoozed_until,
    threads.c.closed_reason,
    threads.c.answered_at,
    threads.c.answered_note,
    threads.c.reopened_at,
)


def _rule_threads(result: Iterable[Any]) -> list[RuleThread]:
    return [
        RuleThread(
            id=tid,
            mailbox_id=mailbox_id,
            subject=subject,
            state=state,
            reason=reason,
            needs_response=bool(needs_response),
            last_outbound_at=_utc(last_outbound_at),
            last_inbound_at=_utc(last_inbound_at),
            next_check_at=_utc(next_check_at),
            followups_sent=followups_sent,
            snoozed_until=_utc(snoozed_until),
            closed_reason=closed_reason,
            answered_at=_utc(answered_at),
            answered_note=answered_note,
            reopened_at=_utc(reopened_at),
        )
        for (
            tid,
            mailbox_id,
            subject,
            state,
            reason,
            needs_response,
            last_outbound_at,
            last_inbound_at,
            next_check_at,
            followups_sent,
            snoozed_until,
            closed_reason,
            answered_at,
            answered_note,
            reopened_at,
        ) in result
    ]


def _settled() -> ColumnElement[bool]:
    """The thread's mailbox is past its baseline (the few mailboxes still in one are read
    once, not joined per thread)."""
    return threads.c.mailbox_id.not_in(select(mailboxes.c.id).where(mailboxes.c.baseline == true()))


async def earliest_check(conn: AsyncConnection, *, now: datetime) -> datetime | None:
    """When the scheduler must wake next: `now` if anything is dirty, else the first
    next_check_at (both read from an index); mailboxes in their baseline do not count."""
    dirty = select(threads.c.id).where(threads.c.dirty == true(), _settled()).limit(1)
    if (await conn.execute(dirty)).first():
        return now
    # In index order, stopping at the first row (a MIN() with a WHERE would read them all).
    first = await conn.execute(
        select(threads.c.next_check_at)
        .where(threads.c.next_check_at.is_not(None), _settled())
        .order_by(threads.c.next_check_at)
        .limit(1)
    )
    value: datetime | None = first.scalar_one_or_none()
    return _utc(value) if value is not None else None


async def save_decisions(
    conn: AsyncConnection, decisions: Sequence[DecidedThread], *, now: datetime
) -> None:
    """Write many threads' decisions, each only in the columns that changed from the row as
    read. One executemany per set of changed columns (usually one or two), so that a batch
    costs a few statements and a row is not rewritten with values it already holds. Rows go
    to the driver as tuples (see storage.common): SQLAlchemy's per-row parameter processing
    cost more than SQLite's own work, and a baseline's end writes tens of thousands."""
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
    dialect = conn.dialect
    as_time, as_flag = time_value(dialect), flag_value(dialect)
    stamp = as_time(now)
    # In id order: neighbouring rows share table pages, so each page is visited once.
    for d in sorted(decisions, key=_by_id):
        before, after = _decided_of(d.thread), _decided_of(d.decided)
        if before == after:  # nothing changed: the row is only stamped
            groups[()].append((stamp, d.thread.id))
            continue
        names: list[str] = []
        values: list[Any] = []
        for c, old, value in zip(_DECIDED_FIELDS, before, after, strict=True):
            if old != value:
                names.append(c)
                values.append(
                    as_time(value)
                    if c in _DECIDED_TIMES
                    else as_flag(value)
                    if c == "needs_response"
                    else value
                )
        groups[tuple(names)].append((*values, stamp, d.thread.id))
    for columns, rows in groups.items():
        if dialect.name == "postgresql":
            # One statement over arrays, not a Bind/Execute per row: asyncpg's executemany
            # of 5,000 rows cost some 60 ms here, about five times this.
            *values, stamps, ids = zip(*rows, strict=True)
            await conn.exec_driver_sql(
                _save_arrays_sql(dialect, columns), (stamps[0], *map(list, values), list(ids))
            )
        else:
            await conn.exec_driver_sql(_save_sql(dialect, columns), rows)


_DECIDED_TIMES: Final = frozenset(f.name for f in fields(Decided) if f.name.endswith("_at"))


@lru_cache(maxsize=64)
def _save_sql(dialect: Dialect, columns: tuple[str, ...]) -> str:
    # Only our own column names go into the text; values are bound. dirty as a literal: one
    # bind fewer per row (FALSE is a keyword of both databases).
    sets = "".join(f"{c} = ?, " for c in columns)
    return driver_sql(
        dialect,
        f"UPDATE threads SET {sets}dirty = FALSE, updated_at = ? WHERE id = ?",  # noqa: S608
    )


@lru_cache(maxsize=64)
def _save_arrays_sql(dialect: Dialect, columns: tuple[str, ...]) -> str:
    """`_save_sql` for PostgreSQL: the stamp, then each column's values as one array, then
    the ids."""
    arrays = [f"?::{threads.c[c].type.compile(dialect=dialect)}[]" for c in columns]
    sets = "".join(f"{c} = v.{c}, " for c in columns)
    return driver_sql(
        dialect,
        f"UPDATE threads SET {sets}dirty = FALSE, updated_at = ? "  # noqa: S608 - our names
        f"FROM unnest({', '.join([*arrays, '?::BIGINT[]'])}) AS v({', '.join([*columns, 'id'])})"
        " WHERE threads.id = v.id",
    )


def _by_id(decision: DecidedThread) -> int:
    return decision.thread.id


async def hold_for_bodies(
    conn: AsyncConnection, thread_ids: Collection[int], *, forget_state: bool = False
) -> None:
    """Threads with a body still to read wait for it undecided: not dirty, no check due
    (with `forget_state`, no state either: a first sync's early one is taken back).
    The sync marks them dirty again when it has read the body (mail.sync.read_bodies)."""
    if thread_ids:
        values: dict[str, Any] = {"dirty": False, "next_check_at": None}
        if forget_state:
            values["state"] = None
        await conn.execute(
            update(threads).where(threads.c.id.in_(sorted(thread_ids))).values(values)
        )


async def holding_in_state(
    conn: AsyncConnection,
    mailbox_id: int,
    state: str,
    *,
    now: datetime,
    after_id: int = 0,
    limit: int = 1000,
) -> list[RuleThread]:
    """A page (id order) of the mailbox's threads in `state` whose decision still holds at
    `now`: no mail since it was made (not dirty) and no check due. Locked on PostgreSQL
    (waiting for a rep's action on one, which may change it, as marking them dirty did)."""
    t = threads.c
    query = (
        select(*(_raw(c) for c in _RULE_THREAD_COLUMNS))
        .where(
            t.mailbox_id == mailbox_id,
            t.state == state,
            t.dirty == false(),
            or_(t.next_check_at.is_(None), t.next_check_at > now),
            t.id > after_id,
        )
        .order_by(t.id)
        .limit(limit)
        .with_for_update(of=threads)
    )
    return _rule_threads(await conn.execute(query))


async def lock_thread(conn: AsyncConnection, thread_id: int, *, user_id: int) -> ThreadRow | None:
    """The user's thread, locked for an action in this transaction (PostgreSQL)."""
    query = (
        select(threads)
        .where(threads.c.id == thread_id, threads.c.user_id == user_id)
        .with_for_update(of=threads)
    )
    row = (await conn.execute(query)).mappings().first()
    return _thread_row(row) if row else None


async def set_manual(conn: AsyncConnection, thread_id: int, patch: ThreadPatch) -> None:
    """Record what the rep decided by hand (snoozed_until, closed_reason, answered_*,
    reopened_at)."""
    await conn.execute(update(threads).where(threads.c.id == thread_id).values(patch.values()))


async def mark_mailbox_dirty(conn: AsyncConnection, mailbox_id: int) -> int:
    """Ask the scheduler to look at every evaluated thread of the mailbox again (its rules
    changed). Returns how many were marked."""
    result = await conn.execute(
        update(threads)
        .where(threads.c.mailbox_id == mailbox_id, threads.c.dirty == false())
        .values(dirty=True)
    )
    return int(result.rowcount)


async def threads_of_mailbox(
    conn: AsyncConnection, mailbox_id: int, *, after_id: int = 0, limit: int = 1000
) -> list[ThreadRow]:
    """A page of the mailbox's threads in id order (preview and backtest walk them all)."""
    query = (
        select(threads)
        .where(threads.c.mailbox_id == mailbox_id, threads.c.id > after_id)
        .order_by(threads.c.id)
        .limit(limit)
    )
    return [_thread_row(r) for r in (await conn.execute(query)).mappings()]
