"""What a rep does to a thread by hand: snooze, close, reopen, "they answered outside e-mail".

Each action records the rep's word and evaluates the thread again in the same transaction,
so the new state, its reason and its event (through the outbox) commit together.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import ThreadState
from app.errors import Conflict, InvalidInput, NotFound
from app.services.context import Context
from app.services.evaluation import decide_threads, write_decisions
from app.services.threads import ThreadView, thread_view
from app.storage import threads as store
from app.storage.threads import ThreadPatch, ThreadRow

# States a reopen makes sense for: the rules stopped watching, or the rep asked them to wait.
_REOPENABLE = frozenset({ThreadState.CLOSED, ThreadState.SNOOZED, ThreadState.BOUNCED})
MAX_SNOOZE = timedelta(days=5 * 366)


async def snooze(ctx: Context, *, user_id: int, thread_id: int, until: datetime) -> ThreadView:
    now = ctx.clock()
    try:
        until = until.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"until is out of range: {until.isoformat()}") from None
    if until > now + MAX_SNOOZE:
        raise InvalidInput(f"until must be within {MAX_SNOOZE.days} days from now")
    if until <= now:
        raise InvalidInput(
            f"until must be in the future: {until.isoformat()} is not after {now.isoformat()}"
        )

    def check(row: ThreadRow) -> ThreadPatch:
        if row.state == ThreadState.CLOSED:
            raise Conflict(f"thread {thread_id} is closed: reopen it before snoozing")
        return ThreadPatch(snoozed_until=until)

    return await _act(ctx, user_id, thread_id, now, check)


async def close(ctx: Context, *, user_id: int, thread_id: int, reason: str | None) -> ThreadView:
    note = (reason or "").strip()
    patch = ThreadPatch(closed_reason=f"by you — {note}" if note else "by you")
    return await _act(ctx, user_id, thread_id, ctx.clock(), lambda _row: patch)


async def reopen(ctx: Context, *, user_id: int, thread_id: int) -> ThreadView:
    """Watch the thread again from now: a hand close and a snooze are lifted, and a decline,
    a bounce or used-up follow-ups before now no longer decide."""
    now = ctx.clock()

    def check(row: ThreadRow) -> ThreadPatch:
        if row.state not in _REOPENABLE:
            raise Conflict(
                f"thread {thread_id} is {row.state}: only closed, snoozed or bounced "
                "threads can be reopened"
            )
        return ThreadPatch(closed_reason=None, snoozed_until=None, reopened_at=now)

    return await _act(ctx, user_id, thread_id, now, check)


async def answered(ctx: Context, *, user_id: int, thread_id: int, note: str) -> ThreadView:
    """The prospect answered outside e-mail ("they called / we met"): replied, with the note."""
    text = " ".join(note.split())
    if not text:
        raise InvalidInput("note must say what happened, e.g. 'they called'")
    now = ctx.clock()

    def check(row: ThreadRow) -> ThreadPatch:
        return ThreadPatch(answered_at=now, answered_note=text, snoozed_until=None)

    return await _act(ctx, user_id, thread_id, now, check)


async def _act(
    ctx: Context,
    user_id: int,
    thread_id: int,
    now: datetime,
    change: Callable[[ThreadRow], ThreadPatch],
) -> ThreadView:
    async with ctx.engine.begin() as conn:
        row = await _thread(conn, thread_id, user_id)  # locked until the commit
        patch = change(row)
        await store.set_manual(conn, thread_id, patch)
        batch = await decide_threads(conn, [patch.applied_to(row)], now)
        await write_decisions(conn, batch, now)
        updated = await _thread(conn, thread_id, user_id)
    message_ids = batch[0].messages.shown_ids if batch else []
    return thread_view(updated, message_ids, updated_at=updated.updated_at)


async def _thread(conn: AsyncConnection, thread_id: int, user_id: int) -> ThreadRow:
    row = await store.lock_thread(conn, thread_id, user_id=user_id)
    if row is None or row.state is None:
        raise NotFound(f"no thread {thread_id}")
    return row
