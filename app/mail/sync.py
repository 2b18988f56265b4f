"""One folder's incremental sync, and the whole-mailbox pass over an open IMAP session.

Each batch is stored together with the folder's high-water UID in one transaction, so a crash
or a dropped connection resumes exactly after the last commit and never stores twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.folders import folders_to_sync
from app.domain.model import Identity
from app.mail.imap import ImapSession
from app.mail.pipeline import prepare_message
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage.messages import NewMessage

log = logging.getLogger(__name__)
STORE_BATCH = 500

Progress = Callable[[str, int, int], None]  # folder, done, total


@dataclass
class SyncReport:
    folders: int = 0
    new_messages: int = 0
    skipped: int = 0
    touched_threads: set[int] = field(default_factory=set)


@dataclass(frozen=True, kw_only=True)
class MailboxRef:
    id: int
    user_id: int
    identity: Identity


async def sync_mailbox(
    engine: AsyncEngine,
    session: ImapSession,
    mailbox: MailboxRef,
    *,
    since: date | None,
    now: datetime,
    progress: Progress | None = None,
) -> SyncReport:
    """Read every chosen folder from its last committed UID on."""
    listed = await asyncio.to_thread(session.list_folders)
    chosen = folders_to_sync(listed, gmail=session.is_gmail)
    async with engine.begin() as conn:
        rows = await mailbox_store.ensure_folders(
            conn, mailbox.id, {f.name: f.special_use for f in chosen}
        )
    report = SyncReport()
    for folder in chosen:
        await _sync_folder(
            engine, session, mailbox, rows[folder.name], since, now, report, progress
        )
        report.folders += 1
    return report


async def _sync_folder(
    engine: AsyncEngine,
    session: ImapSession,
    mailbox: MailboxRef,
    folder: dict[str, Any],
    since: date | None,
    now: datetime,
    report: SyncReport,
    progress: Progress | None,
) -> None:
    status = await asyncio.to_thread(session.select, folder["name"])
    highest = int(folder["highest_uid"] or 0)
    if folder["uidvalidity"] is not None and folder["uidvalidity"] != status.uidvalidity:
        log.info("sync.uidvalidity_changed folder=%s", folder["name"])
        async with engine.begin() as conn:
            await message_store.forget_locations(conn, folder["id"])
        highest = 0
    if (
        folder["uidvalidity"] == status.uidvalidity
        and status.uidnext is not None
        and (status.uidnext <= highest + 1)
    ):
        return  # nothing new since the last pass
    # The look-back window applies to a folder's first read only; later passes take all new UIDs.
    uids = await asyncio.to_thread(
        session.search_uids, min_uid=highest + 1, since=since if highest == 0 else None
    )
    total = len(uids)
    if not uids:
        async with engine.begin() as conn:
            await mailbox_store.save_folder_position(
                conn,
                folder["id"],
                uidvalidity=status.uidvalidity,
                highest_uid=highest,
                highest_modseq=status.highest_modseq,
            )
        return
    done = 0
    for start in range(0, total, STORE_BATCH):
        chunk = uids[start : start + STORE_BATCH]
        batch, errors = await asyncio.to_thread(
            _fetch_and_prepare, session, chunk, folder["id"], status.uidvalidity, mailbox, now
        )
        async with engine.begin() as conn:
            stored = await message_store.store_messages(
                conn, mailbox_id=mailbox.id, user_id=mailbox.user_id, batch=batch
            )
            for uid, error in errors:
                await message_store.record_error(conn, folder_id=folder["id"], uid=uid, error=error)
            await mailbox_store.save_folder_position(
                conn,
                folder["id"],
                uidvalidity=status.uidvalidity,
                highest_uid=chunk[-1],
                highest_modseq=status.highest_modseq,
            )
        report.new_messages += stored.new_messages
        report.skipped += len(errors)
        report.touched_threads |= stored.touched_threads
        done += len(chunk)
        if progress:
            progress(folder["name"], done, total)


def _fetch_and_prepare(
    session: ImapSession,
    uids: list[int],
    folder_id: int,
    uidvalidity: int,
    mailbox: MailboxRef,
    now: datetime,
) -> tuple[list[NewMessage], list[tuple[int, str]]]:
    batch: list[NewMessage] = []
    errors: list[tuple[int, str]] = []
    for fetched in session.fetch_headers(uids):
        try:
            batch.append(
                prepare_message(
                    fetched.header,
                    identity=mailbox.identity,
                    fallback_date=fetched.internal_date or now,
                    folder_id=folder_id,
                    uid=fetched.uid,
                    uidvalidity=uidvalidity,
                )
            )
        except Exception as exc:  # a message we cannot read is recorded and skipped, never fatal
            log.warning("sync.message_skipped uid=%s error=%s", fetched.uid, exc)
            errors.append((fetched.uid, f"{type(exc).__name__}: {exc}"))
    return batch, errors
