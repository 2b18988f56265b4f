"""Messages, where they live, and the Message-ID graph that groups them into threads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import Classification, HeaderFacts
from app.domain.threads import ThreadLinks
from app.storage.common import insert_ignore, utcnow
from app.storage.tables import (
    message_locations,
    messages,
    sync_errors,
    thread_keys,
    threads,
)

# SQLite allows 32,766 bound parameters; stay far below for IN (…) lists.
_IN_CHUNK = 500


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    facts: HeaderFacts
    links: ThreadLinks
    classification: Classification
    date: datetime  # the Date header, else the server's INTERNALDATE
    folder_id: int | None = None  # None for imports from files
    uid: int | None = None
    uidvalidity: int | None = None


@dataclass(frozen=True, kw_only=True)
class StoreResult:
    new_messages: int
    touched_threads: set[int]


async def store_messages(
    conn: AsyncConnection, *, mailbox_id: int, user_id: int, batch: Sequence[NewMessage]
) -> StoreResult:
    """Store a batch idempotently: known messages only gain a location; new ones are threaded.

    Threads touched are marked dirty so the rules look at them again, even after a crash.
    """
    keys = list(dict.fromkeys(m.links.key for m in batch))
    known = await _message_ids_by_key(conn, mailbox_id, keys)
    fresh: dict[str, NewMessage] = {}
    for m in batch:
        if m.links.key not in known:
            fresh.setdefault(m.links.key, m)
    now = utcnow()
    if fresh:
        await conn.execute(
            insert(messages), [_message_row(mailbox_id, m, now) for m in fresh.values()]
        )
        known |= await _message_ids_by_key(conn, mailbox_id, list(fresh))
    await insert_ignore(
        conn,
        message_locations,
        [
            {
                "folder_id": m.folder_id,
                "uid": m.uid,
                "uidvalidity": m.uidvalidity,
                "message_id": known[m.links.key],
            }
            for m in batch
            if m.folder_id is not None
        ],
        ["folder_id", "uid", "uidvalidity"],
    )
    touched = await _thread_new_messages(
        conn, mailbox_id=mailbox_id, user_id=user_id, fresh=list(fresh.values()), ids=known
    )
    return StoreResult(new_messages=len(fresh), touched_threads=touched)


async def record_error(conn: AsyncConnection, *, folder_id: int, uid: int, error: str) -> None:
    """A message that could not be read: remembered with its error, then skipped."""
    await insert_ignore(
        conn,
        sync_errors,
        [{"folder_id": folder_id, "uid": uid, "error": error[:2000], "created_at": utcnow()}],
        ["folder_id", "uid"],
    )


async def forget_locations(conn: AsyncConnection, folder_id: int) -> None:
    """UIDVALIDITY changed: the folder's old UIDs mean nothing now. Messages stay."""
    await conn.execute(delete(message_locations).where(message_locations.c.folder_id == folder_id))
    await conn.execute(delete(sync_errors).where(sync_errors.c.folder_id == folder_id))


async def _message_ids_by_key(
    conn: AsyncConnection, mailbox_id: int, keys: Sequence[str]
) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(keys):
        rows = await conn.execute(
            select(messages.c.message_key, messages.c.id).where(
                messages.c.mailbox_id == mailbox_id, messages.c.message_key.in_(chunk)
            )
        )
        out.update({k: int(i) for k, i in rows})
    return out


def _message_row(mailbox_id: int, m: NewMessage, now: datetime) -> dict[str, Any]:
    f = m.facts
    return {
        "mailbox_id": mailbox_id,
        "message_key": m.links.key,
        "has_message_id": f.message_id is not None,
        "in_reply_to": list(f.in_reply_to),
        "references": list(f.references),
        "subject": f.subject,
        "from_addr": f.from_.normalized if f.from_ else "",
        "from_name": f.from_.name if f.from_ else "",
        "to_addrs": [a.normalized for a in f.to],
        "cc_addrs": [a.normalized for a in f.cc],
        "date": m.date,
        "kind": m.classification.kind.value,
        "kind_reason": m.classification.reason,
        "signals": f.signals,
        "defects": list(f.defects),
        "created_at": now,
    }


async def _thread_new_messages(
    conn: AsyncConnection,
    *,
    mailbox_id: int,
    user_id: int,
    fresh: list[NewMessage],
    ids: dict[str, int],
) -> set[int]:
    """Join each new message to the thread of any key it shares; merge threads it bridges."""
    if not fresh:
        return set()
    all_keys = {k for m in fresh for k in (m.links.key, *m.links.references)}
    key_thread = await _threads_by_key(conn, mailbox_id, list(all_keys))
    new_keys: dict[str, int] = {}
    touched: set[int] = set()
    for m in sorted(fresh, key=lambda m: m.date):
        linked = [m.links.key, *m.links.references]
        found = {key_thread[k] for k in linked if k in key_thread}
        if not found:
            target = await _create_thread(conn, mailbox_id, user_id, m.facts.subject)
        else:
            target = min(found)
            for other in found - {target}:
                await _merge_thread(conn, source=other, target=target)
                key_thread = {k: (target if t == other else t) for k, t in key_thread.items()}
                new_keys = {k: (target if t == other else t) for k, t in new_keys.items()}
                touched.discard(other)
        for k in linked:
            if key_thread.get(k) != target:
                key_thread[k] = target
                new_keys[k] = target
        touched.add(target)
        await conn.execute(
            update(messages).where(messages.c.id == ids[m.links.key]).values(thread_id=target)
        )
    await insert_ignore(
        conn,
        thread_keys,
        [{"mailbox_id": mailbox_id, "message_key": k, "thread_id": t} for k, t in new_keys.items()],
        ["mailbox_id", "message_key"],
    )
    if touched:
        await conn.execute(
            update(threads)
            .where(threads.c.id == bindparam("tid"))
            .values(dirty=True, updated_at=utcnow()),
            [{"tid": t} for t in touched],
        )
    return touched


async def _threads_by_key(
    conn: AsyncConnection, mailbox_id: int, keys: Sequence[str]
) -> dict[str, int]:
    out: dict[str, int] = {}
    for chunk in _chunks(keys):
        rows = await conn.execute(
            select(thread_keys.c.message_key, thread_keys.c.thread_id).where(
                thread_keys.c.mailbox_id == mailbox_id, thread_keys.c.message_key.in_(chunk)
            )
        )
        out.update({k: int(t) for k, t in rows})
    return out


async def _create_thread(conn: AsyncConnection, mailbox_id: int, user_id: int, subject: str) -> int:
    now = utcnow()
    result = await conn.execute(
        insert(threads)
        .values(
            mailbox_id=mailbox_id,
            user_id=user_id,
            subject=subject,
            state=None,
            reason="",
            dirty=True,
            created_at=now,
            updated_at=now,
        )
        .returning(threads.c.id)
    )
    return int(result.scalar_one())


async def _merge_thread(conn: AsyncConnection, *, source: int, target: int) -> None:
    """A message bridged two threads: the older (lower id) one absorbs the other."""
    await conn.execute(
        update(messages).where(messages.c.thread_id == source).values(thread_id=target)
    )
    await conn.execute(
        update(thread_keys).where(thread_keys.c.thread_id == source).values(thread_id=target)
    )
    await conn.execute(delete(threads).where(threads.c.id == source))


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _IN_CHUNK):
        yield items[start : start + _IN_CHUNK]
