"""Threads as the API and the events show them: lists, detail with the timeline."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.model import ThreadState
from app.errors import InvalidInput, NotFound
from app.services.context import Context
from app.services.paging import decode_cursor, encode_cursor, split_page
from app.services.views import iso
from app.storage import threads as store
from app.storage.engine import reading

MAX_PAGE = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadView:
    """A thread as the API and the events show it (field order: the JSON's)."""

    id: int
    mailbox_id: int
    subject: str
    state: str
    reason: str
    needs_response: bool
    message_ids: list[str]
    last_outbound_at: str | None
    last_inbound_at: str | None
    next_check_at: str | None
    followups_sent: int
    snoozed_until: str | None
    updated_at: str | None

    def as_json(self) -> dict[str, Any]:  # an event payload's `thread`: a JSON object
        # Spelled out: dataclasses.asdict deep-copies, 30 µs a thread in a batch of events.
        return {
            "id": self.id,
            "mailbox_id": self.mailbox_id,
            "subject": self.subject,
            "state": self.state,
            "reason": self.reason,
            "needs_response": self.needs_response,
            "message_ids": self.message_ids,
            "last_outbound_at": self.last_outbound_at,
            "last_inbound_at": self.last_inbound_at,
            "next_check_at": self.next_check_at,
            "followups_sent": self.followups_sent,
            "snoozed_until": self.snoozed_until,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageView:
    """One message of a thread's timeline, as the API shows it."""

    message_id: str | None
    kind: str
    kind_reason: str
    thread_reason: str | None
    from_: str  # "from" in the JSON
    from_name: str
    to: list[str]
    cc: list[str]
    date: str | None
    subject: str
    folder: str | None
    folders: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadDetailView:
    """A thread with its timeline, oldest message first."""

    thread: ThreadView
    messages: list[MessageView]


def thread_view(
    row: store.RuleThread, message_ids: list[str], *, updated_at: datetime | None
) -> ThreadView:
    """The thread as shown; `row` must have been decided once (its state is set)."""
    if row.state is None:
        raise ValueError(f"thread {row.id} has not been decided yet")
    return ThreadView(
        id=row.id,
        mailbox_id=row.mailbox_id,
        subject=row.subject,
        state=row.state,
        reason=row.reason,
        needs_response=row.needs_response,
        message_ids=message_ids,
        last_outbound_at=iso(row.last_outbound_at),
        last_inbound_at=iso(row.last_inbound_at),
        next_check_at=iso(row.next_check_at),
        followups_sent=row.followups_sent,
        snoozed_until=iso(row.snoozed_until),
        updated_at=iso(updated_at),
    )


def decided_view(
    thread: store.RuleThread, decided: store.Decided, message_ids: list[str], *, at: datetime
) -> ThreadView:
    """The thread as shown once `decided` is written at `at` (an event's payload)."""
    return ThreadView(
        id=thread.id,
        mailbox_id=thread.mailbox_id,
        subject=decided.subject,
        state=decided.state,
        reason=decided.reason,
        needs_response=decided.needs_response,
        message_ids=message_ids,
        last_outbound_at=iso(decided.last_outbound_at),
        last_inbound_at=iso(decided.last_inbound_at),
        next_check_at=iso(decided.next_check_at),
        followups_sent=decided.followups_sent,
        snoozed_until=iso(thread.snoozed_until),
        updated_at=iso(at),
    )


def shown_ids(messages: Sequence[store.RuleMessage]) -> list[str]:
    """The thread's Message-IDs, oldest first (synthetic keys are not Message-IDs)."""
    return [m.message_key for m in messages if m.has_message_id]


async def list_threads(
    ctx: Context,
    *,
    user_id: int,
    mailbox_id: int | None = None,
    state: ThreadState | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[ThreadView], str | None]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    before = decode_cursor("t", cursor) if cursor else None
    async with reading(ctx.engine) as conn:
        rows = await store.list_threads(
            conn,
            user_id=user_id,
            mailbox_id=mailbox_id,
            state=state.value if state else None,
            before_id=before,
            limit=limit + 1,
        )
        page, more = split_page(rows, limit)
        ids = await store.message_ids_by_thread(conn, [r.id for r in page])
    items = [thread_view(r, ids.get(r.id, []), updated_at=r.updated_at) for r in page]
    next_cursor = encode_cursor("t", page[-1].id) if more else None
    return items, next_cursor


async def get_thread(ctx: Context, *, user_id: int, thread_id: int) -> ThreadDetailView:
    async with reading(ctx.engine) as conn:
        row = await store.get_thread(conn, thread_id, user_id=user_id)
        if row is None or row.state is None:
            raise NotFound(f"no thread {thread_id}")
        messages = (await store.messages_of_threads(conn, [thread_id]))[thread_id]
        where = await store.folders_of_messages(conn, [m.id for m in messages])
    return ThreadDetailView(
        thread=thread_view(row, shown_ids(messages), updated_at=row.updated_at),
        messages=[
            MessageView(
                message_id=m.message_key if m.has_message_id else None,
                kind=m.kind,
                kind_reason=m.kind_reason,
                thread_reason=m.thread_reason,
                from_=m.from_addr,
                from_name=m.from_name,
                to=m.to_addrs,
                cc=m.cc_addrs,
                date=iso(m.date),
                subject=m.subject,
                folder=next(iter(where.get(m.id, [])), None),
                folders=where.get(m.id, []),
            )
            for m in messages
        ],
    )
