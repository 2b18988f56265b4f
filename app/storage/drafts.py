"""Follow-up drafts and each mailbox's draft settings."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, exists, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import (
    draft_settings,
    drafts,
    folders,
    mailboxes,
    message_locations,
    threads,
)

DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedDraft:
    """A `drafts` row without the message bytes: what a list shows."""

    id: int
    user_id: int
    mailbox_id: int
    thread_id: int
    step: int
    state: str  # pending | approved | dismissed | snoozed
    question: str
    body: str | None
    revision: int
    message_id: str
    forwarded_message_id: str
    reason: str | None
    subject: str
    from_addr: str
    to_addrs: list[str]
    cc_addrs: list[str]
    skipped_attachments: list[str]
    dismiss_reason: str | None
    snoozed_until: datetime | None
    delivery: str | None
    approved_revision: int | None
    imap_folder: str | None
    imap_uidvalidity: int | None
    imap_uid: int | None
    approved_at: datetime | None
    sent_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftRow(ListedDraft):
    """A whole `drafts` row: with the composed RFC 5322 message."""

    raw: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDraft:
    """A draft as composed, before it has an id, a revision and its times."""

    user_id: int
    mailbox_id: int
    thread_id: int
    step: int
    state: str
    question: str
    raw: bytes
    message_id: str
    forwarded_message_id: str
    reason: str | None
    subject: str
    from_addr: str
    to_addrs: list[str]
    cc_addrs: list[str]
    skipped_attachments: list[str]


class Keep(Enum):
    """A `DraftChange` field left as it is (None is a value some columns take)."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftChange:
    """The columns an update writes; the others (KEEP) stay as they are."""

    state: str | Keep = KEEP
    question: str | Keep = KEEP
    body: str | Keep | None = KEEP
    raw: bytes | Keep = KEEP
    revision: int | Keep = KEEP
    dismiss_reason: str | Keep | None = KEEP
    snoozed_until: datetime | Keep | None = KEEP
    delivery: str | Keep = KEEP
    approved_revision: int | Keep = KEEP
    approved_at: datetime | Keep = KEEP
    sent_at: datetime | Keep = KEEP
    imap_folder: str | Keep | None = KEEP
    imap_uidvalidity: int | Keep | None = KEEP
    imap_uid: int | Keep | None = KEEP

    def columns(self) -> dict[str, object]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not KEEP}


@dataclass(frozen=True, slots=True, kw_only=True)
class DueThread:
    """A quiet thread waiting for the draft of its due step (`followups_sent` + 1)."""

    id: int
    mailbox_id: int
    followups_sent: int
    last_outbound_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageLocation:
    """One copy of a stored message on the server."""

    message_id: int
    name: str  # the folder's
    special_use: str | None
    uid: int
    uidvalidity: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftSettings:
    """A mailbox's `draft_settings` row; these defaults for a mailbox without one."""

    # JSON column: stage -> the mailbox's own variants; None (or a stage left out): defaults
    templates: dict[str, list[str]] | None = None
    attach_originals: bool = False
    attachment_max_bytes: int = DEFAULT_ATTACHMENT_MAX_BYTES
    smtp_enabled: bool = False
    smtp_host: str | None = None
    smtp_port: int | None = None
    smtp_security: str | None = None  # tls | starttls | plain
    smtp_username: str | None = None
    smtp_secret_enc: bytes | None = None


# What a list shows: everything but the message bytes.
_LISTED = [c for c in drafts.c if c.name != "raw"]
_SETTINGS = [c for c in draft_settings.c if c.name not in ("mailbox_id", "updated_at")]


def _listed(row: Row[Any]) -> ListedDraft:
    return ListedDraft(**row._mapping)  # the columns of `_LISTED`, exactly


def _draft(row: Row[Any]) -> DraftRow:
    return DraftRow(**row._mapping)  # every column of `drafts`, exactly


def waiting_for(step: Any, *, made_at: Any = None) -> ColumnElement[bool]:
    """The thread (the `threads` row of the query) still waits for follow-up `step`: it is
    quiet and that step is the due one (followups + 1). With `made_at`, the time a draft was
    made, also: made since the rep last wrote (a draft from before belongs to an earlier
    quiet spell of the thread). `step` and `made_at` are values or columns of `drafts`."""
    clauses = [threads.c.state == "quiet", threads.c.followups_sent + 1 == step]
    if made_at is not None:
        clauses.append(
            or_(threads.c.last_outbound_at.is_(None), made_at > threads.c.last_outbound_at)
        )
    return and_(*clauses)


def _waited_for_draft() -> Any:
    """A draft exists that its thread still waits for (see `waiting_for`). Correlated with
    the outer query's `threads` row (which drafts does this thread have?) or its `drafts` row
    (does this draft's thread still wait for it?)."""
    return exists().where(
        drafts.c.thread_id == threads.c.id,
        waiting_for(drafts.c.step, made_at=drafts.c.created_at),
    )


async def quiet_threads_without_draft(
    conn: AsyncConnection,
    *,
    mailbox_id: int,
    limit: int,
    after: tuple[datetime, int] | None = None,
    thread_id: int | None = None,
) -> list[DueThread]:
    """Quiet threads of the mailbox that have no draft yet for their due step, newest quiet
    first (the rep's last e-mail newest: the follow-ups a rep looks at first), a page at a
    time after `after` (the last row's last_outbound_at and id). A quiet thread always has
    the rep's last e-mail; one without could not be followed up anyway."""
    query = select(
        threads.c.id, threads.c.mailbox_id, threads.c.followups_sent, threads.c.last_outbound_at
    ).where(
        threads.c.mailbox_id == mailbox_id,
        threads.c.state == "quiet",
        threads.c.last_outbound_at.is_not(None),
        ~_waited_for_draft(),
    )
    if thread_id is not None:
        query = query.where(threads.c.id == thread_id)
    if after is not None:
        at, after_id = after
        query = query.where(
            or_(
                threads.c.last_outbound_at < at,
                and_(threads.c.last_outbound_at == at, threads.c.id < after_id),
            )
        )
    query = query.order_by(threads.c.last_outbound_at.desc(), threads.c.id.desc()).limit(limit)
    return [
        DueThread(
            id=int(r.id),
            mailbox_id=int(r.mailbox_id),
            followups_sent=int(r.followups_sent),
            last_outbound_at=r.last_outbound_at,
        )
        for r in await conn.execute(query)
    ]


async def count_quiet_without_draft(conn: AsyncConnection, mailbox_id: int) -> int:
    query = select(func.count()).where(
        threads.c.mailbox_id == mailbox_id,
        threads.c.state == "quiet",
        threads.c.last_outbound_at.is_not(None),
        ~_waited_for_draft(),
    )
    return int((await conn.execute(query)).scalar_one())


async def mailboxes_needing_drafts(conn: AsyncConnection, *, limit: int) -> list[int]:
    """Mailboxes with a quiet thread that lacks its draft, except those failing to log in
    (a mailbox imported from a file forwards the copies kept at import)."""
    query = (
        select(threads.c.mailbox_id)
        .join(mailboxes, mailboxes.c.id == threads.c.mailbox_id)
        .where(
            threads.c.state == "quiet",
            ~_waited_for_draft(),
            mailboxes.c.status != "failed",
        )
        .distinct()
        .limit(limit)
    )
    return [int(m) for m in (await conn.execute(query)).scalars()]


async def locations_of_messages(
    conn: AsyncConnection, message_ids: Sequence[int]
) -> dict[int, list[MessageLocation]]:
    """Where each stored message can be fetched, by message id: folder name, special use,
    uid, uidvalidity. Sent first: that copy is the one the rep's client wrote."""
    out: dict[int, list[MessageLocation]] = defaultdict(list)
    if not message_ids:
        return out
    query = (
        select(
            message_locations.c.message_id,
            folders.c.name,
            folders.c.special_use,
            message_locations.c.uid,
            message_locations.c.uidvalidity,
        )
        .join(folders, folders.c.id == message_locations.c.folder_id)
        .where(message_locations.c.message_id.in_(message_ids))
    )
    for row in await conn.execute(query):
        out[int(row.message_id)].append(
            MessageLocation(
                message_id=int(row.message_id),
                name=row.name,
                special_use=row.special_use,
                uid=int(row.uid),
                uidvalidity=int(row.uidvalidity),
            )
        )
    for rows in out.values():
        rows.sort(key=lambda r: (r.special_use != "\\Sent", r.name))
    return out


async def insert_draft(conn: AsyncConnection, draft: NewDraft, *, now: datetime) -> DraftRow | None:
    """The new draft's row, or None when the thread has one for that step already."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(drafts)
        .values(revision=1, created_at=now, updated_at=now, **asdict(draft))
        .on_conflict_do_nothing(index_elements=["thread_id", "step", "forwarded_message_id"])
        .returning(*drafts.c)
    )
    row = (await conn.execute(stmt)).first()
    return _draft(row) if row else None


async def get_draft(
    conn: AsyncConnection, draft_id: int, *, user_id: int | None = None
) -> DraftRow | None:
    query = select(drafts).where(drafts.c.id == draft_id)
    if user_id is not None:
        query = query.where(drafts.c.user_id == user_id)
    row = (await conn.execute(query)).first()
    return _draft(row) if row else None


async def list_drafts(
    conn: AsyncConnection,
    *,
    user_id: int,
    now: datetime,
    thread_id: int | None,
    mailbox_id: int | None,
    state: str | None,
    before_id: int | None,
    limit: int,
) -> list[ListedDraft]:
    """Newest first. A snoozed draft whose time has come counts as pending again."""
    query = select(*_LISTED).where(drafts.c.user_id == user_id)
    if thread_id is not None:
        query = query.where(drafts.c.thread_id == thread_id)
    if mailbox_id is not None:
        query = query.where(drafts.c.mailbox_id == mailbox_id)
    if state == "pending":
        woke = and_(drafts.c.state == "snoozed", drafts.c.snoozed_until <= now)
        query = query.where(or_(drafts.c.state == "pending", woke))
    elif state == "snoozed":
        query = query.where(drafts.c.state == "snoozed", drafts.c.snoozed_until > now)
    elif state is not None:
        query = query.where(drafts.c.state == state)
    if before_id is not None:
        query = query.where(drafts.c.id < before_id)
    query = query.order_by(drafts.c.id.desc()).limit(limit)
    return [_listed(r) for r in await conn.execute(query)]


async def update_draft(
    conn: AsyncConnection,
    draft_id: int,
    change: DraftChange,
    *,
    now: datetime,
    revision: int | None = None,
) -> DraftRow | None:
    """Apply `change`; with `revision`, only if nobody changed the draft since it was read.
    The row as written, None when there was nothing to change (no such draft, or another
    revision)."""
    stmt = update(drafts).where(drafts.c.id == draft_id)
    if revision is not None:
        stmt = stmt.where(drafts.c.revision == revision)
    stmt = stmt.values(**change.columns(), updated_at=now).returning(*drafts.c)
    row = (await conn.execute(stmt)).first()
    return _draft(row) if row else None


async def get_settings(conn: AsyncConnection, mailbox_id: int) -> DraftSettings | None:
    query = select(*_SETTINGS).where(draft_settings.c.mailbox_id == mailbox_id)
    row = (await conn.execute(query)).first()
    return DraftSettings(**row._mapping) if row else None  # the columns of `_SETTINGS`


async def save_settings(
    conn: AsyncConnection, mailbox_id: int, settings: DraftSettings, *, now: datetime
) -> None:
    """Insert or update the mailbox's settings row (one statement on either backend)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {"mailbox_id": mailbox_id, **asdict(settings), "updated_at": now}
    stmt = dialect.insert(draft_settings).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["mailbox_id"], set_={k: stmt.excluded[k] for k in row if k != "mailbox_id"}
    )
    await conn.execute(stmt)


async def thread_is_due(conn: AsyncConnection, thread_id: int, step: int) -> bool:
    """The thread still waits for follow-up `step` (`waiting_for`): checked in the transaction
    that writes the draft, and again before a draft is approved."""
    query = select(threads.c.id).where(threads.c.id == thread_id, waiting_for(step))
    return (await conn.execute(query)).first() is not None


async def retire_stale_drafts(
    conn: AsyncConnection, *, mailbox_id: int, reason: str, now: datetime
) -> int:
    """Dismiss the pending and snoozed drafts whose thread no longer waits for them (a reply
    came, the thread was closed, or the rep wrote again), so the review list stays true."""
    result = await conn.execute(
        update(drafts)
        .where(
            drafts.c.mailbox_id == mailbox_id,
            drafts.c.state.in_(("pending", "snoozed")),
            ~_waited_for_draft(),
        )
        .values(state="dismissed", dismiss_reason=reason, updated_at=now)
    )
    return int(result.rowcount or 0)
