"""Messages, where they live, and the Message-ID graph that groups them into threads."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, bindparam, delete, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.incoming import NewMessage
from app.domain.threads import (
    SubjectCandidate,
    ThreadLinks,
    group_threads,
)
from app.storage.common import (
    allocate_ids,
    bulk_insert,
    driver_sql,
    flag_value,
    insert_rows,
    time_value,
)
from app.storage.message_rows import (
    MESSAGE_COLUMNS,
    OPTIONAL_COLUMNS,
    MessageRow,
    message_row,
)
from app.storage.stored_messages import MessageToRead, StoredHeader
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


@dataclass(frozen=True, kw_only=True)
class StoreResult:
    new_messages: int
    touched_threads: set[int]


async def store_messages(
    conn: AsyncConnection,
    *,
    mailbox_id: int,
    user_id: int,
    batch: Sequence[NewMessage | MessageRow],
    now: datetime,
) -> StoreResult:
    """Store a batch idempotently: known messages only gain a location; new ones are threaded.

    A fixed handful of statements per batch, whatever its size: the first sync of a large
    mailbox is bound by this, so rows go to the driver as tuples of ready values (encoded
    already where the messages were read: `message_rows`). Threads touched are marked dirty
    so the rules look at them again, even after a crash.
    """
    dialect = conn.dialect.name
    rows = [m if isinstance(m, MessageRow) else message_row(m, dialect) for m in batch]
    known, key_thread = await _lookup(
        conn, mailbox_id, list(dict.fromkeys(k for r in rows for k in _keys(r.links)))
    )
    fresh: dict[str, MessageRow] = {}
    for r in rows:
        if r.links.key not in known:
            fresh.setdefault(r.links.key, r)
    touched: set[int] = set()
    if fresh:
        new = list(fresh.values())
        thread_ids = await _assign_threads(conn, mailbox_id, user_id, new, key_thread, now)
        touched = set(thread_ids)
        ids = await allocate_ids(conn, messages, len(new))
        await _insert_messages(conn, mailbox_id, new, thread_ids, ids, now)
        known.update(zip(fresh, ids, strict=True))
    await insert_rows(
        conn,
        message_locations,
        ("folder_id", "uid", "uidvalidity", "message_id"),
        [(*r.location, known[r.links.key]) for r in rows if r.location is not None],
        ignore_conflicts_on=["folder_id", "uid", "uidvalidity"],
    )
    return StoreResult(new_messages=len(fresh), touched_threads=touched)


async def record_error(
    conn: AsyncConnection, *, folder_id: int, uid: int, error: str, now: datetime
) -> None:
    """A message that could not be read: remembered with its error, then skipped."""
    await bulk_insert(
        conn,
        sync_errors,
        [{"folder_id": folder_id, "uid": uid, "error": error[:2000], "created_at": now}],
        ignore_conflicts_on=["folder_id", "uid"],
    )


async def forget_locations(conn: AsyncConnection, folder_id: int) -> None:
    """UIDVALIDITY changed: the folder's old UIDs mean nothing now. Messages stay."""
    await conn.execute(delete(message_locations).where(message_locations.c.folder_id == folder_id))
    await conn.execute(delete(sync_errors).where(sync_errors.c.folder_id == folder_id))


# A batch's keys travel as one parameter: a JSON list on SQLite, an array on PostgreSQL.
_IN_KEYS = {"sqlite": "IN (SELECT value FROM json_each(?))", "postgresql": "= ANY(?)"}
# A key's thread: a stored message's own key maps through `messages.thread_id`; `thread_keys`
# holds the keys referenced before their message was stored, or whose message never comes
# (databases written before also hold every message's own key there: both agree).
_LOOKUP = """
SELECT message_key, id, thread_id FROM messages WHERE mailbox_id = ? AND message_key {in_keys}
UNION ALL
SELECT message_key, NULL, thread_id FROM thread_keys WHERE mailbox_id = ? AND message_key {in_keys}
"""


async def _lookup(
    conn: AsyncConnection, mailbox_id: int, keys: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """For the keys given: the stored messages' ids, and every key's thread, in one query."""
    known: dict[str, int] = {}
    key_thread: dict[str, int] = {}
    if not keys:
        return known, key_thread
    dialect = conn.dialect
    param: Any = json.dumps(keys) if dialect.name == "sqlite" else list(keys)
    sql = driver_sql(dialect, _LOOKUP.format(in_keys=_IN_KEYS[dialect.name]))
    referenced: list[tuple[str, int]] = []
    result = await conn.exec_driver_sql(sql, (mailbox_id, param, mailbox_id, param))
    # (key, message id or NULL for a thread_keys row, thread id or NULL)
    rows = cast("list[tuple[str, int | None, int | None]]", result.all())
    for key, message_id, thread_id in rows:
        if message_id is not None:
            known[key] = int(message_id)
        if thread_id is None:
            continue
        if message_id is None:
            referenced.append((key, int(thread_id)))
        else:
            key_thread[key] = int(thread_id)
    key_thread.update(referenced)  # they agree; thread_keys has the last word, as it had
    return known, key_thread


async def _threads_by_key(
    conn: AsyncConnection, mailbox_id: int, keys: Sequence[str]
) -> dict[str, int]:
    return (await _lookup(conn, mailbox_id, list(dict.fromkeys(keys))))[1]


_ALL_NULL = (None,) * len(OPTIONAL_COLUMNS)


async def _insert_messages(
    conn: AsyncConnection,
    mailbox_id: int,
    fresh: Sequence[MessageRow],
    thread_ids: Sequence[int],
    ids: Sequence[int],
    now: datetime,
) -> None:
    created = time_value(conn.dialect)(now)
    groups: dict[tuple[bool, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for m, thread_id, message_id in zip(fresh, thread_ids, ids, strict=True):
        row = (message_id, mailbox_id, thread_id, *m.values, created)
        optional = m.optional
        if optional == _ALL_NULL:
            groups[()].append(row)
        else:
            carried = tuple(value is not None for value in optional)
            groups[carried].append(row + tuple(v for v in optional if v is not None))
    for carried, rows in groups.items():
        names = [n for n, has in zip(OPTIONAL_COLUMNS, carried, strict=False) if has]
        await insert_rows(conn, messages, (*MESSAGE_COLUMNS, *names), rows)


async def _assign_threads(
    conn: AsyncConnection,
    mailbox_id: int,
    user_id: int,
    fresh: Sequence[MessageRow],
    key_thread: dict[str, int],
    now: datetime,
) -> list[int]:
    """Each new message's thread: the thread of any key it shares, merging threads it bridges,
    or a new one. Union-find in memory, then a few bulk statements."""
    # Only a message that points somewhere can join others; the rest are their own group.
    root_of = group_threads(m.links for m in fresh if m.links.references)
    roots = [root_of.get(m.links.key, m.links.key) for m in fresh]
    own = {m.links.key for m in fresh}
    existing: dict[str, set[int]] = defaultdict(set)
    for key, thread_id in key_thread.items():
        root = root_of.get(key, key if key in own else None)
        if root is not None:
            existing[root].add(thread_id)
    survivor = _bridged(existing.values())
    for source, into in survivor.items():
        await _merge_thread(conn, source=source, target=into)
    target = {root: survivor.get(min(found), min(found)) for root, found in existing.items()}
    await mark_threads_dirty(conn, set(target.values()), now=now)  # existing threads with new mail
    target.update(await _new_threads(conn, mailbox_id, user_id, fresh, roots, target, now))
    # Keys no stored message owns, so that their message finds the thread when it comes.
    phantoms: dict[str, int] = {}
    for m, root in zip(fresh, roots, strict=True):
        for key in m.links.references:
            if key not in key_thread and key not in own:
                phantoms.setdefault(key, target[root])
    await insert_rows(
        conn,
        thread_keys,
        ("mailbox_id", "message_key", "thread_id"),
        [(mailbox_id, key, thread_id) for key, thread_id in phantoms.items()],
        ignore_conflicts_on=["mailbox_id", "message_key"],
    )
    return [target[root] for root in roots]


def _bridged(groups: Iterable[set[int]]) -> dict[int, int]:
    """Stored threads that the batch bridges -> the thread they merge into: the oldest of all
    those linked, also through a thread that two groups of the batch share."""
    into: dict[int, int] = {}

    def final(thread_id: int) -> int:
        while thread_id in into:
            thread_id = into[thread_id]
        return thread_id

    for found in groups:
        oldest, *others = sorted({final(t) for t in found})
        for other in others:
            into[other] = oldest
    return {source: final(source) for source in into}


async def _new_threads(
    conn: AsyncConnection,
    mailbox_id: int,
    user_id: int,
    fresh: Sequence[MessageRow],
    roots: Sequence[str],
    taken: dict[str, int],
    now: datetime,
) -> dict[str, int]:
    """A thread for each group without one, named after its earliest message; ids follow
    the order of the messages."""
    earliest: dict[str, MessageRow] = {}
    for m, root in zip(fresh, roots, strict=True):
        if root not in taken:
            first = earliest.get(root)
            if first is None or m.date < first.date:
                earliest[root] = m
    if not earliest:
        return {}
    ids = await allocate_ids(conn, threads, len(earliest))
    stamp = time_value(conn.dialect)(now)
    no, yes = flag_value(conn.dialect)(False), flag_value(conn.dialect)(True)
    await insert_rows(
        conn,
        threads,
        (
            "id",
            "mailbox_id",
            "user_id",
            "subject",
            "subject_key",
            "reason",
            "needs_response",
            "followups_sent",
            "dirty",
            "created_at",
            "updated_at",
        ),  # state: NULL until the rules have looked at it
        [
            (thread_id, mailbox_id, user_id, m.subject, m.subject_key, "", no, 0, yes, stamp, stamp)
            for m, thread_id in zip(earliest.values(), ids, strict=True)
        ],
    )
    return dict(zip(earliest, ids, strict=True))


def _keys(link: ThreadLinks) -> tuple[str, ...]:
    return (link.key, *link.references)


# The columns of a `StoredHeader`, in its fields' order.
_HEADER_COLUMNS = tuple(messages.c[name] for name in StoredHeader.__dataclass_fields__)


def _header(row: Any) -> StoredHeader:
    return StoredHeader(**row._mapping)


async def has_pending_orphans(conn: AsyncConnection, mailbox_id: int) -> bool:
    query = select(messages.c.id).where(
        messages.c.mailbox_id == mailbox_id, messages.c.orphan_subject.is_not(None)
    )
    return (await conn.execute(query.limit(1))).first() is not None


async def pending_orphans(conn: AsyncConnection, mailbox_id: int) -> list[StoredHeader]:
    """Answers that lost their threading headers and have not found their thread yet."""
    query = select(*_HEADER_COLUMNS).where(
        messages.c.mailbox_id == mailbox_id, messages.c.orphan_subject.is_not(None)
    )
    return [_header(r) for r in await conn.execute(query)]


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
    conn: AsyncConnection, *, message_id: int, own_thread: int | None, thread_id: int, reason: str
) -> None:
    """An orphan found its thread: its own thread (it and whatever threaded under it) merges
    into that one, which the rep already knows, and the reason is kept on the message. The
    caller marks the thread dirty."""
    if own_thread is not None and own_thread != thread_id:
        await _merge_thread(conn, source=own_thread, target=thread_id)
    await conn.execute(
        update(messages)
        .where(messages.c.id == message_id)
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


# The bodies worth reading are among these: the partial index ix_messages_unread holds exactly
# them, so looking costs what is unread, not what is stored. SQLite uses a partial index only
# when the query repeats its condition word for word (literals, not parameters): hence text.
_UNREAD = text("messages.details IS NULL AND messages.kind IN ('reply', 'auto_reply', 'bounce')")


# A location under the folder's current UIDVALIDITY: one the message can be fetched by.
_current_location = (folders.c.id == message_locations.c.folder_id) & (
    folders.c.uidvalidity == message_locations.c.uidvalidity
)


def _body_matters() -> ColumnElement[bool]:
    """Of the unread: every automatic answer and bounce (a bounce may not be threaded until
    its body names the returned message), and answers in threads where the rep wrote. One
    condition for the body reader and for the scheduler's wait on it, so they cannot drift."""
    rep = messages.alias("rep")
    rep_wrote = (
        select(rep.c.id)
        .where(rep.c.thread_id == messages.c.thread_id, rep.c.kind == "outbound")
        .exists()
    )
    return or_(messages.c.kind != "reply", rep_wrote)


async def messages_needing_body(
    conn: AsyncConnection, mailbox_id: int, *, limit: int
) -> list[MessageToRead]:
    """Inbound messages whose body has not been read yet and matters: answers in threads
    where the rep wrote, and every automatic answer or bounce (a bounce may not be threaded
    until its body names the returned message). With the folder and UID to fetch it by,
    in folder and UID order; the oldest messages first when there are more than `limit`."""
    query = (
        select(*_HEADER_COLUMNS, folders.c.name.label("folder_name"), message_locations.c.uid)
        .join(message_locations, message_locations.c.message_id == messages.c.id)
        .join(folders, _current_location)
        .where(messages.c.mailbox_id == mailbox_id, _UNREAD, _body_matters())
        # In the partial index's order (SQLite walks it and stops at `limit`, no sort of all).
        .order_by(messages.c.id, folders.c.name, message_locations.c.uid)
        .limit(limit)
    )
    seen: set[int] = set()
    out = []
    for row in await conn.execute(query):
        if row.id not in seen:  # one location per message is enough
            seen.add(row.id)
            out.append(MessageToRead(**row._mapping))
    out.sort(key=lambda row: (row.folder_name, row.uid))
    return out


async def threads_awaiting_body(conn: AsyncConnection, thread_ids: Sequence[int]) -> set[int]:
    """Those of `thread_ids` with a message whose body `messages_needing_body` would still
    read: deciding them on its header alone could announce what the body contradicts."""
    if not thread_ids:
        return set()
    query = (
        select(messages.c.thread_id)
        .join(message_locations, message_locations.c.message_id == messages.c.id)
        .join(folders, _current_location)
        .where(
            messages.c.thread_id.in_(list(thread_ids)),
            _UNREAD,
            _body_matters(),
        )
        .distinct()
    )
    return {int(t) for t in (await conn.execute(query)).scalars()}


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
    conn: AsyncConnection, *, mailbox_id: int, message_id: int, keys: Sequence[str]
) -> int:
    """Tie a stored message to more Message-IDs (a bounce to the message it returns): its
    thread absorbs, or is absorbed by, the threads of those IDs. Returns the thread now;
    the caller marks it dirty with the rest of what it touched."""
    # Read again: an earlier link in the same slice may have merged its thread away.
    current = int(
        (
            await conn.execute(select(messages.c.thread_id).where(messages.c.id == message_id))
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


async def mark_threads_dirty(
    conn: AsyncConnection, thread_ids: Iterable[int], *, now: datetime
) -> None:
    params = sorted(set(thread_ids))
    if not params:
        return
    stamp = time_value(conn.dialect)(now)
    if conn.dialect.name == "postgresql":  # one statement, not a Bind/Execute per thread
        await conn.exec_driver_sql(
            "UPDATE threads SET dirty = TRUE, updated_at = $1 WHERE id = ANY($2::BIGINT[])",
            (stamp, params),
        )
        return
    await conn.exec_driver_sql(
        driver_sql(conn.dialect, "UPDATE threads SET dirty = ?, updated_at = ? WHERE id = ?"),
        [(flag_value(conn.dialect)(True), stamp, thread_id) for thread_id in params],
    )
