"""Run the rules over threads and record what changed, with its events, in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.calendars import work_calendar
from app.domain.events import thread_events, thread_payload
from app.domain.model import (
    MessageKind,
    Rules,
    ThreadHistory,
    ThreadState,
)
from app.domain.rules import decide
from app.domain.worktime import WorkCalendar
from app.mail.pipeline import thread_message
from app.services.threads import thread_view
from app.storage import mailboxes as mailbox_store
from app.storage import outbox
from app.storage import threads as store

_INBOUND = frozenset({MessageKind.REPLY, MessageKind.AUTO_REPLY, MessageKind.BOUNCE})


def rules_of(mailbox: dict[str, Any]) -> Rules:
    overrides = mailbox.get("rules") or {}
    if "cadence_business_days" in overrides:
        overrides = {
            **overrides,
            "cadence_business_days": tuple(overrides["cadence_business_days"]),
        }
    return Rules(**overrides)


def calendar_of(mailbox: dict[str, Any], now: datetime) -> WorkCalendar:
    return work_calendar(
        timezone=mailbox["timezone"],
        country=mailbox["holiday_country"],
        subdiv=mailbox["holiday_subdiv"],
        years=range(now.year - 1, now.year + 2),
    )


def history_of(thread: dict[str, Any], rows: Sequence[dict[str, Any]]) -> ThreadHistory:
    return ThreadHistory(
        messages=tuple(thread_message(r) for r in rows),
        followups_sent=thread["followups_sent"],
        snoozed_until=thread["snoozed_until"],
        closed_reason=thread["closed_reason"],
    )


async def evaluate_threads(
    conn: AsyncConnection, thread_rows: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Decide each thread; write changed states and their events. Returns how many changed."""
    if not thread_rows:
        return 0
    mailboxes: dict[int, dict[str, Any]] = {}
    calendars: dict[int, WorkCalendar] = {}
    rules: dict[int, Rules] = {}
    messages = await store.messages_of_threads(conn, [t["id"] for t in thread_rows])
    changed = 0
    for thread in thread_rows:
        mailbox_id = thread["mailbox_id"]
        if mailbox_id not in mailboxes:
            row = await mailbox_store.get_mailbox(conn, mailbox_id)
            if row is None:
                continue
            mailboxes[mailbox_id] = row
            calendars[mailbox_id] = calendar_of(row, now)
            rules[mailbox_id] = rules_of(row)
        mailbox = mailboxes[mailbox_id]
        rows = messages.get(thread["id"], [])
        decision = decide(history_of(thread, rows), rules[mailbox_id], calendars[mailbox_id], now)
        outbound = [r["date"] for r in rows if r["kind"] == MessageKind.OUTBOUND]
        inbound = [r["date"] for r in rows if r["kind"] in _INBOUND]
        values = {
            "state": decision.state.value,
            "reason": decision.reason,
            "needs_response": decision.needs_response,
            "next_check_at": decision.next_check_at,
            "last_outbound_at": max(outbound, default=None),
            "last_inbound_at": max(inbound, default=None),
            "subject": rows[0]["subject"] if rows else thread["subject"],
        }
        await store.save_decision(conn, thread["id"], values)
        old_state = ThreadState(thread["state"]) if thread["state"] else None
        events = thread_events(
            old_state=old_state,
            new_state=decision.state,
            old_needs_response=bool(thread["needs_response"]),
            new_needs_response=decision.needs_response,
        )
        if decision.state != old_state:
            changed += 1
        if events:
            ids = [r["message_key"] for r in rows if r["has_message_id"]]
            payload = thread_payload(thread_view({**thread, **values}, ids))
            for event in events:
                await outbox.enqueue(
                    conn,
                    user_id=mailbox["user_id"],
                    type=event.value,
                    payload=payload,
                    mailbox_id=mailbox_id,
                    thread_id=thread["id"],
                )
    return changed


async def evaluate_due(
    conn: AsyncConnection, now: datetime, *, mailbox_id: int | None = None, limit: int = 1000
) -> int:
    """Evaluate threads with new mail or whose next check has come. Returns how many ran."""
    rows = await store.threads_to_evaluate(conn, now=now, mailbox_id=mailbox_id, limit=limit)
    await evaluate_threads(conn, rows, now)
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
