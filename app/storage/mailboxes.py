"""Mailboxes, their folders' sync positions, and the leases that keep one syncer and one IDLE
watcher per mailbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, Required, TypedDict, cast

from sqlalchemy import RowMapping, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.domain.ruleset import RulesJson
from app.storage.common import bulk_insert
from app.storage.tables import folders, mailboxes, users

# auth_method of a mailbox imported from a file (`radiosilence import`): no IMAP server behind it
FILE_SOURCE: Final = "none"

AuthMethod = Literal["password", "oauth2", "none"]
Security = Literal["tls", "starttls", "plain"]


class SyncProgress(TypedDict):
    """The running sync's place (mailboxes.progress): shown on the pages and in the API."""

    folder: str
    done: int
    total: int


class MailboxRow(TypedDict):
    """One row of `tables.mailboxes`, every column. A TypedDict, not a dataclass: the query
    modules of other topics read it by key, and it stays one value from SELECT to caller."""

    id: int
    user_id: int
    name: str
    imap_host: str
    imap_port: int
    imap_security: Security
    imap_username: str
    auth_method: AuthMethod
    secret_enc: bytes
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    rules: RulesJson  # overrides of the defaults, checked as they are read
    status: str
    status_message: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    watch_owner: str | None
    watch_expires_at: datetime | None
    progress: SyncProgress | None
    folder_include: list[str] | None
    folder_exclude: list[str] | None
    oauth2_provider: str | None
    refresh_token_enc: bytes | None
    token_expires_at: datetime | None
    baseline: bool
    drafts_preparing: int
    created_at: datetime
    updated_at: datetime


class NewMailbox(TypedDict, total=False):
    """A mailbox to insert: status is "new" and the first sync is due at once unless given."""

    user_id: Required[int]
    name: Required[str]
    imap_host: Required[str]
    imap_port: Required[int]
    imap_security: Required[Security]
    imap_username: Required[str]
    auth_method: Required[AuthMethod]
    secret_enc: Required[bytes]
    addresses: Required[list[str]]
    timezone: Required[str]
    rules: Required[RulesJson]
    holiday_country: str | None
    holiday_subdiv: str | None
    folder_include: list[str] | None
    folder_exclude: list[str] | None
    status: str
    next_sync_at: datetime | None
    baseline: bool


class Grant(TypedDict):
    """The columns of a sign-in with a provider: its access token (in secret_enc) and the
    refresh token that renews it, both encrypted."""

    auth_method: AuthMethod
    secret_enc: bytes
    oauth2_provider: str
    refresh_token_enc: bytes
    token_expires_at: datetime | None


class MailboxChanges(TypedDict, total=False):
    """The columns an update may set (any subset); updated_at is always set."""

    name: str
    imap_host: str
    imap_port: int
    imap_security: Security
    imap_username: str
    auth_method: AuthMethod
    secret_enc: bytes
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    rules: RulesJson
    status: str
    status_message: str
    last_sync_at: datetime | None
    next_sync_at: datetime | None
    folder_include: list[str] | None
    folder_exclude: list[str] | None
    oauth2_provider: str | None
    refresh_token_enc: bytes | None
    token_expires_at: datetime | None
    baseline: bool


class FolderRow(TypedDict):
    """One row of `tables.folders`: a folder of a mailbox and how far the sync has read it."""

    id: int
    mailbox_id: int
    name: str
    special_use: str | None
    uidvalidity: int | None
    highest_uid: int
    highest_modseq: int | None
    last_synced_at: datetime | None
    backfill_top_uid: int | None
    backfill_low_uid: int | None


class FolderPosition(TypedDict, total=False):
    """How far a folder has been read: the columns `save_folder_position` may set."""

    uidvalidity: int | None
    highest_uid: int
    highest_modseq: int | None
    backfill_top_uid: int | None
    backfill_low_uid: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderRead:
    """A folder the sync has seen, as the mailbox page lists it."""

    name: str
    special_use: str | None
    last_synced_at: datetime | None


def mailbox_row(row: RowMapping) -> MailboxRow:
    # The SELECT is of the whole table: its columns are MailboxRow's keys exactly.
    return cast("MailboxRow", dict(row))


def folder_row(row: RowMapping) -> FolderRow:
    # As mailbox_row: the whole folders table.
    return cast("FolderRow", dict(row))


async def create_mailbox(
    conn: AsyncConnection, values: NewMailbox, *, now: datetime, grant: Grant | None = None
) -> int:
    """Insert a mailbox (signed in with a provider when `grant` is given); returns its id."""
    row: dict[str, object] = {
        "status": "new",
        "status_message": "",
        "created_at": now,
        "updated_at": now,
        "next_sync_at": now,
        **values,
        **(grant or {}),
    }
    result = await conn.execute(insert(mailboxes).values(**row).returning(mailboxes.c.id))
    return int(result.scalar_one())


async def find_mailbox(conn: AsyncConnection, *, user_id: int, name: str) -> MailboxRow | None:
    query = select(mailboxes).where(mailboxes.c.user_id == user_id, mailboxes.c.name == name)
    row = (await conn.execute(query)).mappings().first()
    return mailbox_row(row) if row else None


async def get_mailbox(
    conn: AsyncConnection, mailbox_id: int, *, user_id: int | None = None
) -> MailboxRow | None:
    query = select(mailboxes).where(mailboxes.c.id == mailbox_id)
    if user_id is not None:
        query = query.where(mailboxes.c.user_id == user_id)
    row = (await conn.execute(query)).mappings().first()
    return mailbox_row(row) if row else None


async def get_mailboxes(conn: AsyncConnection, mailbox_ids: Iterable[int]) -> list[MailboxRow]:
    """Several mailboxes in one query (a scheduler batch spans a few)."""
    query = select(mailboxes).where(mailboxes.c.id.in_(list(mailbox_ids)))
    return [mailbox_row(r) for r in (await conn.execute(query)).mappings()]


async def find_mailbox_ids(
    conn: AsyncConnection,
    *,
    mailbox_id: int | None = None,
    name: str | None = None,
    owner_email: str | None = None,
) -> list[int]:
    """Ids of the mailboxes with this id or this name, oldest first; only the mailboxes of
    the user with `owner_email` when it is given."""
    query = select(mailboxes.c.id).order_by(mailboxes.c.id)
    if mailbox_id is not None:
        query = query.where(mailboxes.c.id == mailbox_id)
    if name is not None:
        query = query.where(mailboxes.c.name == name)
    if owner_email is not None:
        query = query.join(users, users.c.id == mailboxes.c.user_id).where(
            users.c.email == owner_email
        )
    return [int(i) for i in (await conn.execute(query)).scalars()]


async def list_mailboxes(conn: AsyncConnection, user_id: int) -> list[MailboxRow]:
    query = select(mailboxes).where(mailboxes.c.user_id == user_id).order_by(mailboxes.c.id)
    return [mailbox_row(r) for r in (await conn.execute(query)).mappings()]


async def update_mailbox(
    conn: AsyncConnection,
    mailbox_id: int,
    values: MailboxChanges,
    *,
    now: datetime,
    grant: Grant | None = None,
) -> None:
    """Set `values` (and a provider's new `grant`); updated_at becomes `now`."""
    row: dict[str, object] = {**values, **(grant or {}), "updated_at": now}
    await conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id).values(**row))


async def set_drafts_preparing(conn: AsyncConnection, mailbox_id: int, count: int) -> None:
    """Written only when it changed: most passes find the same count (usually 0)."""
    await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id, mailboxes.c.drafts_preparing != count)
        .values(drafts_preparing=count)
    )


async def delete_mailbox(conn: AsyncConnection, mailbox_id: int) -> None:
    await conn.execute(delete(mailboxes).where(mailboxes.c.id == mailbox_id))


async def set_status(
    conn: AsyncConnection,
    mailbox_id: int,
    status: str,
    message: str = "",
    *,
    now: datetime,
    next_sync_at: datetime | None = None,
    synced: bool = False,
) -> None:
    """`synced`: a pass ended at `now` (last_sync_at)."""
    values = MailboxChanges(status=status, status_message=message)
    if next_sync_at is not None:
        values["next_sync_at"] = next_sync_at
    if synced:
        values["last_sync_at"] = now
    await update_mailbox(conn, mailbox_id, values, now=now)


async def schedule_next_sync(
    conn: AsyncConnection,
    mailbox_id: int,
    *,
    unless_moved_from: datetime | None,
    at: datetime,
) -> bool:
    """Set the next poll to `at`, unless next_sync_at is no longer `unless_moved_from` (the
    value the finishing pass started with: someone made the mailbox due meanwhile). One
    statement, so a concurrent change is never overwritten. True when it was set."""
    column = mailboxes.c.next_sync_at
    result = await conn.execute(
        update(mailboxes)
        .where(
            mailboxes.c.id == mailbox_id,
            column.is_(None) if unless_moved_from is None else column == unless_moved_from,
        )
        .values(next_sync_at=at)
    )
    return bool(result.rowcount)


async def claim_lease(
    conn: AsyncConnection, mailbox_id: int, owner: str, lease: timedelta, *, now: datetime
) -> bool:
    """Take the mailbox's sync for `owner` unless someone else holds a live lease at `now`
    (the wall clock: leases are shared between processes)."""
    return await _claim(conn, mailbox_id, owner, lease, _SYNC, now)


async def release_lease(conn: AsyncConnection, mailbox_id: int, owner: str) -> None:
    await _release(conn, mailbox_id, owner, _SYNC)


async def claim_watch(
    conn: AsyncConnection, mailbox_id: int, owner: str, lease: timedelta, *, now: datetime
) -> bool:
    """Take (or renew) the mailbox's IDLE watch for `owner` unless another owner holds a live
    one: at most one IDLE connection per mailbox across all workers. False also when the
    mailbox is gone; a watcher whose renewal returns False has lost the watch and stops."""
    return await _claim(conn, mailbox_id, owner, lease, _WATCH, now)


async def release_watch(conn: AsyncConnection, mailbox_id: int, owner: str) -> None:
    """Give the watch up at once (only if `owner` still holds it), for the next syncer."""
    await _release(conn, mailbox_id, owner, _WATCH)


# A lease is an (owner, expires at) pair of columns: the sync's and the IDLE watch's.
_SYNC = ("lease_owner", "lease_expires_at")
_WATCH = ("watch_owner", "watch_expires_at")


async def _claim(
    conn: AsyncConnection,
    mailbox_id: int,
    owner: str,
    lease: timedelta,
    columns: tuple[str, str],
    now: datetime,
) -> bool:
    """One statement, so the claim is correct on SQLite (no SKIP LOCKED) and PostgreSQL."""
    owner_col, expires_col = mailboxes.c[columns[0]], mailboxes.c[columns[1]]
    result = await conn.execute(
        update(mailboxes)
        .where(
            mailboxes.c.id == mailbox_id,
            or_(
                owner_col.is_(None),
                expires_col.is_(None),
                expires_col < now,
                owner_col == owner,
            ),
        )
        .values({owner_col: owner, expires_col: now + lease})
        .returning(mailboxes.c.id)
    )
    return result.first() is not None


async def _release(
    conn: AsyncConnection, mailbox_id: int, owner: str, columns: tuple[str, str]
) -> None:
    owner_col, expires_col = mailboxes.c[columns[0]], mailboxes.c[columns[1]]
    await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id == mailbox_id, owner_col == owner)
        .values({owner_col: None, expires_col: None})
    )


async def due_for_sync(conn: AsyncConnection, now: datetime, limit: int) -> list[int]:
    query = (
        select(mailboxes.c.id)
        .where(
            mailboxes.c.next_sync_at <= now,
            or_(mailboxes.c.lease_expires_at.is_(None), mailboxes.c.lease_expires_at < now),
        )
        .order_by(mailboxes.c.next_sync_at)
        .limit(limit)
    )
    return [int(r) for r in (await conn.execute(query)).scalars()]


async def ensure_folders(
    conn: AsyncConnection, mailbox_id: int, names: dict[str, str | None]
) -> dict[str, FolderRow]:
    """Register the folders the server lists (name -> special-use) and return every row by name."""
    await bulk_insert(
        conn,
        folders,
        [
            {"mailbox_id": mailbox_id, "name": n, "special_use": su, "highest_uid": 0}
            for n, su in names.items()
        ],
        ignore_conflicts_on=["mailbox_id", "name"],
    )
    rows = (
        await conn.execute(select(folders).where(folders.c.mailbox_id == mailbox_id))
    ).mappings()
    by_name = {r["name"]: folder_row(r) for r in rows}
    # A server may mark a folder \Sent later on: only the folders whose mark changed are
    # written (usually none, on every poll).
    changed = []
    for name, special_use in names.items():
        row = by_name[name]
        if row["special_use"] != special_use:
            changed.append({"fid": row["id"], "special_use": special_use})
            row["special_use"] = special_use
    if changed:
        await conn.execute(
            update(folders)
            .where(folders.c.id == bindparam("fid"))
            .values(special_use=bindparam("special_use")),
            changed,
        )
    return by_name


async def save_folder_position(
    conn: AsyncConnection, folder_id: int, now: datetime, /, **position: int | None
) -> None:
    """Record how far a folder has been read (the keys of FolderPosition), read at `now`: in
    the transaction of the batch it covers."""
    unknown = position.keys() - FolderPosition.__annotations__.keys()
    if unknown:
        raise ValueError(f"not a folder position: {sorted(unknown)}")
    await conn.execute(
        update(folders).where(folders.c.id == folder_id).values(**position, last_synced_at=now)
    )


async def set_progress(
    conn: AsyncConnection, mailbox_id: int, progress: SyncProgress | None
) -> None:
    await conn.execute(
        update(mailboxes).where(mailboxes.c.id == mailbox_id).values(progress=progress)
    )


async def folders_read(conn: AsyncConnection, mailbox_id: int) -> list[FolderRead]:
    """The mailbox's folders the sync has seen: name, special use, when last read."""
    query = (
        select(folders.c.name, folders.c.special_use, folders.c.last_synced_at)
        .where(folders.c.mailbox_id == mailbox_id)
        .order_by(folders.c.name)
    )
    return [
        FolderRead(name=r.name, special_use=r.special_use, last_synced_at=r.last_synced_at)
        for r in await conn.execute(query)
    ]


async def claim_due_syncs(
    conn: AsyncConnection,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    *,
    real: datetime,
) -> list[int]:
    """Take the sync lease of up to `limit` mailboxes due at `now` for `owner`, the
    longest-waiting first. One statement: PostgreSQL skips rows another worker is claiming
    right now (FOR UPDATE SKIP LOCKED) instead of queueing behind it; SQLite runs it under its
    write lock. Leases run on the wall clock (`real`), like `claim_lease`."""
    due = (
        select(mailboxes.c.id)
        .where(
            mailboxes.c.next_sync_at <= now,
            mailboxes.c.auth_method != FILE_SOURCE,
            or_(mailboxes.c.lease_expires_at.is_(None), mailboxes.c.lease_expires_at < real),
        )
        .order_by(mailboxes.c.next_sync_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id.in_(due))
        .values(lease_owner=owner, lease_expires_at=real + lease)
        .returning(mailboxes.c.id, mailboxes.c.next_sync_at)
    )
    return [int(r.id) for r in sorted(result, key=lambda r: (r.next_sync_at, r.id))]


def _watchable() -> tuple[Any, ...]:
    """Mailboxes worth an IDLE watch: read from an IMAP server, first sync done, not failed."""
    return (
        mailboxes.c.auth_method != FILE_SOURCE,
        mailboxes.c.last_sync_at.is_not(None),
        mailboxes.c.status != "failed",
    )


async def count_watchable(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(mailboxes).where(*_watchable())
    return int((await conn.execute(query)).scalar_one())


async def claim_unwatched(
    conn: AsyncConnection,
    owner: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    *,
    skip: Iterable[int] = (),
) -> list[int]:
    """Take the watch lease of up to `limit` watchable mailboxes nobody watches (or whose
    watcher's lease ran out), except `skip`. SKIP LOCKED as in `claim_due_syncs`."""
    query = select(mailboxes.c.id).where(
        *_watchable(),
        or_(mailboxes.c.watch_expires_at.is_(None), mailboxes.c.watch_expires_at < now),
    )
    skipped = list(skip)
    if skipped:
        query = query.where(mailboxes.c.id.not_in(skipped))
    free = query.order_by(mailboxes.c.id).limit(limit).with_for_update(skip_locked=True)
    result = await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.id.in_(free.scalar_subquery()))
        .values(watch_owner=owner, watch_expires_at=now + lease)
        .returning(mailboxes.c.id)
    )
    return sorted(int(r) for r in result.scalars())


async def release_all(conn: AsyncConnection, owner: str) -> int:
    """Give up every sync and watch lease `owner` still holds (a stopping worker's last act,
    so that nothing waits for its leases to run out). Returns how many rows changed."""
    synced = await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
    )
    watched = await conn.execute(
        update(mailboxes)
        .where(mailboxes.c.watch_owner == owner)
        .values(watch_owner=None, watch_expires_at=None)
    )
    return int(synced.rowcount or 0) + int(watched.rowcount or 0)
