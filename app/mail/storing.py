"""A batch of prepared messages into the database, and answers that lost their threading
headers joined to their thread by subject: the storing half of IMAP sync and file import."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.incoming import NewMessage
from app.domain.model import Identity
from app.domain.threads import SUBJECT_FALLBACK_WINDOW, subject_fallback_match
from app.storage import messages as message_store
from app.storage.message_rows import MessageRow
from app.storage.messages import StoreResult
from app.storage.stored_messages import facts_of_row


async def store_batch(
    conn: AsyncConnection,
    *,
    mailbox_id: int,
    user_id: int,
    folder_id: int,
    batch: Sequence[NewMessage | MessageRow],
    errors: list[tuple[int, str]],
    now: datetime,
) -> StoreResult:
    """Store a batch and record the messages that could not be read, in the caller's
    transaction (a sync commits its folder position with it)."""
    stored = await message_store.store_messages(
        conn, mailbox_id=mailbox_id, user_id=user_id, batch=batch, now=now
    )
    for uid, error in errors:
        await message_store.record_error(conn, folder_id=folder_id, uid=uid, error=error, now=now)
    return stored


async def join_orphans_by_subject(
    conn: AsyncConnection, *, mailbox_id: int, identity: Identity, now: datetime
) -> None:
    """Give answers that lost their threading headers to the thread with the same subject,
    the same people and near dates (`domain.threads.subject_fallback_match`). Run after
    every folder is read, so that it does not matter which folder came first."""
    orphans = await message_store.pending_orphans(conn, mailbox_id)
    if not orphans:
        return
    candidates = await message_store.subject_candidates(
        conn, mailbox_id, sorted({o.orphan_subject for o in orphans if o.orphan_subject})
    )
    moved: dict[int, int] = {}  # thread merged away -> the thread it went into
    touched: set[int] = set()
    expired: list[int] = []
    for orphan in sorted(orphans, key=lambda o: (o.date, o.id)):
        own = orphan.thread_id
        while own in moved:
            own = moved[own]
        facts = facts_of_row(orphan)
        best = None
        for thread_id, candidate in candidates.get(orphan.orphan_subject or "", []):
            if thread_id == own or thread_id in moved:
                continue
            match = subject_fallback_match(facts, candidate, own_domains=identity.org_domains)
            if match.matched and (best is None or candidate.last_date > best[1].last_date):
                best = (thread_id, candidate, match.reason)
        if best is not None:
            await message_store.join_thread(
                conn, message_id=orphan.id, own_thread=own, thread_id=best[0], reason=best[2]
            )
            if own is not None and own != best[0]:
                moved[own] = best[0]
            touched.add(best[0])
        elif orphan.date < now - SUBJECT_FALLBACK_WINDOW:
            expired.append(orphan.id)
    await message_store.mark_threads_dirty(conn, touched, now=now)
    await message_store.stop_looking(conn, expired)
