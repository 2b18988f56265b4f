"""Messages, where they live, and the Message-ID graph that groups them into threads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.model import Classification, HeaderFacts, MessageKind
from app.domain.threads import (
    SubjectCandidate,
    ThreadLinks,
    group_threads,
    orphan_subject_key,
    subject_key,
)
from app.storage.common import allocate_ids, bulk_insert, utcnow
from app.storage.tables import (
    folders,
    message_locations,
    messages,
    sync_errors,
    thread_keys,
    threads,
)

# SQLite allows 32,766 bound parameters; stay far below for IN (…) lists.
_IN_CHUNK = 500
GMAIL_THREAD_DOMAIN = "gmail-thread.radiosilence.invalid"


@dataclass(frozen=True, kw_only=True)
class NewMessage:
    facts: HeaderFacts
    links: ThreadLinks
    classification: Classification
    date: datetime  # the Date header, else the server's INTERNALDATE
    folder_id: int | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    details: dict[str, Any] | None = None  # what reading the body found; None: not read
    text_prefix: str | None = None  # kept only when the operator asks (debugging)


@dataclass(frozen=True, kw_only=True)
class StoreResult:
    new_messages: int
    touched_threads: set[int]


async def store_messages(
    conn: AsyncConnection, *, mailbox_id: int, user_id: int, batch: Sequence[NewMessage]
) -> StoreResult:
    """Store a batch idempotently: known messages only gain a location; new ones are threaded.

    A fixed handful of statements per batch, whatever its size: the first sync of a large
    mailbox is bound by this. Threads touched are marked dirty so the rules look at them again,
    even after a crash.
    """
    keys = list(dict.fromkeys(m.links.key for m in batch))
    known = await _message_ids_by_key(conn, mailbox_id, keys)
    fresh: dict[str, NewMessage] = {}
    for m in batch:
        if m.links.key not in known:
            fresh.setdefault(m.links.key, m)
    touched: set[int] = set()
    if fresh:
        assignment, touched = await _assign_threads(conn, mailbox_id, user_id, list(fresh.values()))
        now = utcnow()
        ids = await allocate_ids(conn, messages, len(fresh))
        rows = [
            _message_row(mailbox_id, m, assignment[m.links.key], now, message_id)
            for m, message_id in zip(fresh.values(), ids, strict=True)
        ]
        await bulk_insert(conn, messages, rows)
        known.update(zip(fresh, ids, strict=True))
    await bulk_insert(
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
        ignore_conflicts_on=["folder_id", "uid", "uidvalidity"],
    )
    return StoreResult(new_messages=len(fresh), touched_threads=touched)


async def record_error(conn: AsyncConnection, *, folder_id: int, uid: int, error: str) -> None:
    """A message that could not be read: remembered with its error, then skipped."""
    await bulk_insert(
        conn,
        sync_errors,
        [{"folder_id": folder_id, "uid": uid, "error": error[:2000], "created_at": utcnow()}],
        ignore_conflicts_on=["folder_id", "uid"],
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


def _message_row(
    mailbox_id: int, m: NewMessage, thread_id: int, now: datetime, message_id: int
) -> dict[str, Any]:
    f = m.facts
    return {
        "id": message_id,
        "mailbox_id": mailbox_id,
        "thread_id": thread_id,
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
        "details": m.details,
        "text_prefix": m.text_prefix,
        "gm_msgid": m.gm_msgid,
        "gm_thrid": m.gm_thrid,
        "orphan_subject": (
            orphan_subject_key(f) if m.classification.kind is not MessageKind.BULK else None
        ),
        "created_at": now,
    }


async def _assign_threads(
    conn: AsyncConnection, mailbox_id: int, user_id: int, fresh: list[NewMessage]
) -> tuple[dict[str, int], set[int]]:
    """Each new message's thread: the thread of any key it shares, merging threads it bridges,
    or a new one. Union-find in memory, then a few bulk statements."""
    all_keys = list({k for m in fresh for k in _linked(m)})
    key_thread = await _threads_by_key(conn, mailbox_id, all_keys)
    root_of = group_threads(
        ThreadLinks(key=m.links.key, references=tuple(_linked(m)[1:])) for m in fresh
    )
    groups: dict[str, list[str]] = defaultdict(list)
    for key in all_keys:
        groups[root_of[key]].append(key)
    earliest: dict[str, NewMessage] = {}
    for m in fresh:
        root = root_of[m.links.key]
        if root not in earliest or m.date < earliest[root].date:
            earliest[root] = m

    target: dict[str, int] = {}
    merges: list[tuple[int, int]] = []
    new_roots: list[str] = []
    for root, keys in groups.items():
        existing = sorted({key_thread[k] for k in keys if k in key_thread})
        if not existing:
            new_roots.append(root)
            continue
        target[root] = existing[0]  # the oldest thread absorbs the others
        merges += [(other, existing[0]) for other in existing[1:]]
    for source, into in merges:
        await _merge_thread(conn, source=source, target=into)
    await mark_threads_dirty(conn, set(target.values()))  # existing threads with new mail
    if new_roots:
        now = utcnow()
        new_ids = await allocate_ids(conn, threads, len(new_roots))
        await bulk_insert(
            conn,
            threads,
            [
                {
                    "id": thread_id,
                    "mailbox_id": mailbox_id,
                    "user_id": user_id,
                    "subject": earliest[r].facts.subject,
                    "subject_key": subject_key(earliest[r].facts.subject),
                    "state": None,
                    "reason": "",
                    "dirty": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for r, thread_id in zip(new_roots, new_ids, strict=True)
            ],
        )
        target.update(zip(new_roots, new_ids, strict=True))
    new_keys = [
        {"mailbox_id": mailbox_id, "message_key": k, "thread_id": target[root_of[k]]}
        for k in all_keys
        if k not in key_thread
    ]
    await bulk_insert(
        conn, thread_keys, new_keys, ignore_conflicts_on=["mailbox_id", "message_key"]
    )
    assignment = {m.links.key: target[root_of[m.links.key]] for m in fresh}
    return assignment, set(assignment.values())


def _linked(m: NewMessage) -> list[str]:
    keys = [m.links.key, *m.links.references]
    if m.gm_thrid is not None:  # Gmail already knows the conversation: trust it
        keys.append(f"<gm-thread-{m.gm_thrid}@{GMAIL_THREAD_DOMAIN}>")
    return keys


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


async def has_pending_orphans(conn: AsyncConnection, mailbox_id: int) -> bool:
    query = select(messages.c.id).where(
        messages.c.mailbox_id == mailbox_id, messages.c.orphan_subject.is_not(None)
    )
    return (await conn.execute(query.limit(1))).first() is not None


async def pending_orphans(conn: AsyncConnection, mailbox_id: int) -> list[dict[str, Any]]:
    """Answers that lost their threading headers and have not found their thread yet."""
    query = select(messages).where(
        messages.c.mailbox_id == mailbox_id, messages.c.orphan_subject.is_not(None)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def subject_candidates(
    conn: AsyncConnection, mailbox_id: int, keys: Sequence[str]
) -> dict[str, list[tuple[int, SubjectCandidate]]]:
    """Per folded subject, the threads that carry it, as the subject fallback compares them."""
    found: dict[int, str] = {}
    for chunk in _chunks(keys):
        rows = await conn.execute(
            select(threads.c.id, threads.c.subject_key).where(
                threads.c.mailbox_id == mailbox_id, threads.c.subject_key.in_(chunk)
            )
        )
        found.update({int(t): k for t, k in rows})
    people: dict[int, set[str]] = defaultdict(set)
    dates: dict[int, list[datetime]] = defaultdict(list)
    ids = list(found)
    for start in range(0, len(ids), _IN_CHUNK):
        found_rows = await conn.execute(
            select(
                messages.c.thread_id,
                messages.c.from_addr,
                messages.c.to_addrs,
                messages.c.cc_addrs,
                messages.c.date,
            ).where(messages.c.thread_id.in_(ids[start : start + _IN_CHUNK]))
        )
        for thread_id, sender, to, cc, when in found_rows:
            people[int(thread_id)].update(a for a in (sender, *to, *cc) if a)
            dates[int(thread_id)].append(when)
    out: dict[str, list[tuple[int, SubjectCandidate]]] = defaultdict(list)
    for thread_id, key in found.items():
        if dates[thread_id]:
            candidate = SubjectCandidate(
                base_subject=key,
                participants=frozenset(people[thread_id]),
                first_date=min(dates[thread_id]),
                last_date=max(dates[thread_id]),
            )
            out[key].append((thread_id, candidate))
    return out


async def join_thread(
    conn: AsyncConnection, *, message: dict[str, Any], thread_id: int, reason: str
) -> None:
    """An orphan found its thread: its own thread (it and whatever threaded under it) merges
    into that one, which the rep already knows, and the reason is kept on the message. The
    caller marks the thread dirty."""
    if message["thread_id"] is not None and int(message["thread_id"]) != thread_id:
        await _merge_thread(conn, source=int(message["thread_id"]), target=thread_id)
    await conn.execute(
        update(messages)
        .where(messages.c.id == message["id"])
        .values(orphan_subject=None, thread_reason=reason)
    )


async def stop_looking(conn: AsyncConnection, message_ids: Sequence[int]) -> None:
    """Orphans past the fallback's time window: no thread can claim them any more."""
    for start in range(0, len(message_ids), _IN_CHUNK):
        await conn.execute(
            update(messages)
            .where(messages.c.id.in_(message_ids[start : start + _IN_CHUNK]))
            .values(orphan_subject=None)
        )


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


async def messages_needing_body(
    conn: AsyncConnection, mailbox_id: int, *, limit: int
) -> list[dict[str, Any]]:
    """Inbound messages whose body has not been read yet and matters: answers in threads
    where the rep wrote, and every automatic answer or bounce (a bounce may not be threaded
    until its body names the returned message). With the folder and UID to fetch it by."""
    rep_wrote = (
        select(messages.c.thread_id)
        .where(messages.c.mailbox_id == mailbox_id, messages.c.kind == "outbound")
        .scalar_subquery()
    )
    query = (
        select(messages, folders.c.name.label("folder_name"), message_locations.c.uid)
        .join(message_locations, message_locations.c.message_id == messages.c.id)
        .join(
            folders,
            (folders.c.id == message_locations.c.folder_id)
            & (folders.c.uidvalidity == message_locations.c.uidvalidity),
        )
        .where(
            messages.c.mailbox_id == mailbox_id,
            messages.c.details.is_(None),
            or_(
                messages.c.kind.in_(("auto_reply", "bounce")),
                (messages.c.kind == "reply") & messages.c.thread_id.in_(rep_wrote),
            ),
        )
        .order_by(folders.c.name, message_locations.c.uid)
        .limit(limit)
    )
    seen: set[int] = set()
    out = []
    for row in (await conn.execute(query)).mappings():
        if row["id"] not in seen:  # one location per message is enough
            seen.add(row["id"])
            out.append(dict(row))
    return out


@dataclass(frozen=True, kw_only=True)
class BodyReading:
    message_id: int
    kind: str
    kind_reason: str
    details: dict[str, Any]
    text_prefix: str | None


async def save_body_readings(conn: AsyncConnection, readings: Sequence[BodyReading]) -> None:
    """What reading the bodies found, in one executemany: a slice of thousands of messages."""
    if not readings:
        return
    await conn.execute(
        update(messages)
        .where(messages.c.id == bindparam("mid"))
        .values(
            kind=bindparam("kind"),
            kind_reason=bindparam("kind_reason"),
            details=bindparam("details"),
            text_prefix=bindparam("text_prefix"),
        ),
        [
            {
                "mid": r.message_id,
                "kind": r.kind,
                "kind_reason": r.kind_reason,
                "details": r.details,
                "text_prefix": r.text_prefix,
            }
            for r in readings
        ],
    )


async def link_message(
    conn: AsyncConnection, *, mailbox_id: int, message: dict[str, Any], keys: Sequence[str]
) -> int:
    """Tie a stored message to more Message-IDs (a bounce to the message it returns): its
    thread absorbs, or is absorbed by, the threads of those IDs. Returns the thread now;
    the caller marks it dirty with the rest of what it touched."""
    # Read again: an earlier link in the same slice may have merged its thread away.
    current = int(
        (
            await conn.execute(select(messages.c.thread_id).where(messages.c.id == message["id"]))
        ).scalar_one()
    )
    found = await _threads_by_key(conn, mailbox_id, list(keys))
    target = min({current, *found.values()})
    for other in {current, *found.values()} - {target}:
        await _merge_thread(conn, source=other, target=target)
    await bulk_insert(
        conn,
        thread_keys,
        [{"mailbox_id": mailbox_id, "message_key": k, "thread_id": target} for k in keys],
        ignore_conflicts_on=["mailbox_id", "message_key"],
    )
    return target


async def mark_threads_dirty(conn: AsyncConnection, thread_ids: Iterable[int]) -> None:
    params = [{"tid": t} for t in set(thread_ids)]
    if params:
        await conn.execute(
            update(threads)
            .where(threads.c.id == bindparam("tid"))
            .values(dirty=True, updated_at=utcnow()),
            params,
        )
