"""Follow-up drafts and each mailbox's draft settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import utcnow
from app.storage.tables import (
    draft_settings,
    drafts,
    folders,
    mailboxes,
    message_locations,
    messages,
    threads,
)

# What a list shows: everything but the message bytes.
_LISTED = [c for c in drafts.c if c.name != "raw"]


def _without_draft_for_due_step() -> Any:
    """No draft for the due step (followups + 1) made since the rep last wrote: a draft from
    before belongs to an earlier quiet spell of the thread."""
    return ~exists().where(
        drafts.c.thread_id == threads.c.id,
        drafts.c.step == threads.c.followups_sent + 1,
        or_(threads.c.last_outbound_at.is_(None), drafts.c.created_at > threads.c.last_outbound_at),
    )


async def quiet_threads_without_draft(
    conn: AsyncConnection, *, mailbox_id: int, limit: int
) -> list[dict[str, Any]]:
    """Quiet threads of the mailbox that have no draft yet for their due step."""
    query = (
        select(threads)
        .where(
            threads.c.mailbox_id == mailbox_id,
            threads.c.state == "quiet",
            _without_draft_for_due_step(),
        )
        .order_by(threads.c.id)
        .limit(limit)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def mailboxes_needing_drafts(conn: AsyncConnection, *, limit: int) -> list[int]:
    """Mailboxes with a quiet thread that lacks its draft and a server to fetch from (not
    imported from a file, not failing to log in)."""
    query = (
        select(threads.c.mailbox_id)
        .join(mailboxes, mailboxes.c.id == threads.c.mailbox_id)
        .where(
            threads.c.state == "quiet",
            _without_draft_for_due_step(),
            mailboxes.c.auth_method != "none",
            mailboxes.c.status != "failed",
        )
        .distinct()
        .limit(limit)
    )
    return [int(m) for m in (await conn.execute(query)).scalars()]


async def locations_of_message(conn: AsyncConnection, message_id: int) -> list[dict[str, Any]]:
    """Where a stored message can be fetched: folder name, special use, uid, uidvalidity.
    Sent first: that copy is the one the rep's client wrote."""
    query = (
        select(
            folders.c.name,
            folders.c.special_use,
            message_locations.c.uid,
            message_locations.c.uidvalidity,
        )
        .join(folders, folders.c.id == message_locations.c.folder_id)
        .where(message_locations.c.message_id == message_id)
    )
    rows = [dict(r) for r in (await conn.execute(query)).mappings()]
    return sorted(rows, key=lambda r: (r["special_use"] != "\\Sent", r["name"]))


async def thread_messages(conn: AsyncConnection, thread_id: int) -> list[dict[str, Any]]:
    query = (
        select(messages)
        .where(messages.c.thread_id == thread_id)
        .order_by(messages.c.date, messages.c.id)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def insert_draft(conn: AsyncConnection, values: dict[str, Any]) -> int | None:
    """The new draft's id, or None when the thread has one for that step already."""
    now = utcnow()
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(drafts)
        .values(revision=1, created_at=now, updated_at=now, **values)
        .on_conflict_do_nothing(index_elements=["thread_id", "step", "forwarded_message_id"])
        .returning(drafts.c.id)
    )
    found = (await conn.execute(stmt)).scalar_one_or_none()
    return int(found) if found is not None else None


async def get_draft(
    conn: AsyncConnection, draft_id: int, *, user_id: int | None = None
) -> dict[str, Any] | None:
    query = select(drafts).where(drafts.c.id == draft_id)
    if user_id is not None:
        query = query.where(drafts.c.user_id == user_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


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
) -> list[dict[str, Any]]:
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
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def update_draft(
    conn: AsyncConnection, draft_id: int, values: dict[str, Any], *, revision: int | None = None
) -> bool:
    """Apply `values`; with `revision`, only if nobody changed the draft since it was read."""
    stmt = update(drafts).where(drafts.c.id == draft_id)
    if revision is not None:
        stmt = stmt.where(drafts.c.revision == revision)
    result = await conn.execute(stmt.values(**values, updated_at=utcnow()))
    return bool(result.rowcount)


async def get_settings(conn: AsyncConnection, mailbox_id: int) -> dict[str, Any] | None:
    query = select(draft_settings).where(draft_settings.c.mailbox_id == mailbox_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def save_settings(conn: AsyncConnection, mailbox_id: int, values: dict[str, Any]) -> None:
    """Insert or update the mailbox's settings row (one statement on either backend)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {"mailbox_id": mailbox_id, **values, "updated_at": utcnow()}
    stmt = dialect.insert(draft_settings).values(**row)
    stmt = stmt.on_conflict_do_update(
        index_elements=["mailbox_id"], set_={k: stmt.excluded[k] for k in row if k != "mailbox_id"}
    )
    await conn.execute(stmt)


async def thread_is_due(conn: AsyncConnection, thread_id: int, step: int) -> bool:
    """Still quiet at that step, in the transaction that writes the draft."""
    query = select(threads.c.id).where(
        threads.c.id == thread_id,
        threads.c.state == "quiet",
        threads.c.followups_sent + 1 == step,
    )
    return (await conn.execute(query)).first() is not None


async def retire_stale_drafts(conn: AsyncConnection, *, mailbox_id: int, reason: str) -> int:
    """Dismiss the pending and snoozed drafts whose thread no longer waits for them (a reply
    came, the thread was closed, or the rep wrote again), so the review list stays true."""
    still_due = exists().where(
        threads.c.id == drafts.c.thread_id,
        threads.c.state == "quiet",
        threads.c.followups_sent + 1 == drafts.c.step,
        or_(threads.c.last_outbound_at.is_(None), drafts.c.created_at > threads.c.last_outbound_at),
    )
    result = await conn.execute(
        update(drafts)
        .where(
            drafts.c.mailbox_id == mailbox_id,
            drafts.c.state.in_(("pending", "snoozed")),
            ~still_due,
        )
        .values(state="dismissed", dismiss_reason=reason, updated_at=utcnow())
    )
    return int(result.rowcount or 0)
