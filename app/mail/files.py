"""Read an mbox file or a Maildir (folders included) through the same pipeline as IMAP sync,
so a rep can try the product on an export without giving it their password."""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.model import Identity
from app.errors import InvalidInput
from app.mail.pipeline import join_orphans_by_subject, prepare_message, store_batch
from app.storage import mailboxes as mailbox_store
from app.storage.messages import NewMessage

BATCH = 500
BODY_PREFIX_BYTES = 65_536  # as much as the body rules read; huge attachments are not parsed
FILE_UIDVALIDITY = 1  # files have no UIDVALIDITY: a message's position in its folder is its UID

Progress = Callable[[str, int], None]  # folder, messages read so far


@dataclass
class ImportReport:
    folders: int = 0
    read: int = 0
    new_messages: int = 0
    skipped: int = 0


def folders_of(path: Path) -> Iterator[tuple[str, mailbox.Mailbox]]:
    """(folder name, mailbox) pairs: an mbox file is one folder named after it; a Maildir is
    INBOX plus its Maildir++ sub-folders (".Sent", ".Clients.Acme" → "Clients/Acme")."""
    if path.is_file():
        yield path.stem or "INBOX", mailbox.mbox(path, create=False)
        return
    if not path.is_dir():
        raise InvalidInput(f"{path} is neither an mbox file nor a Maildir folder")
    if not all((path / sub).is_dir() for sub in ("cur", "new")):
        raise InvalidInput(f"{path} is not a Maildir: it has no cur/ and new/ folders")
    root = mailbox.Maildir(path, factory=None, create=False)
    yield "INBOX", root
    for name in sorted(root.list_folders()):
        yield name.replace(".", "/"), root.get_folder(name)


def split_header(raw: bytes) -> bytes:
    """A message's header block: everything up to the first empty line."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end != -1:
            return raw[: end + len(separator)]
    return raw


async def import_path(
    engine: AsyncEngine,
    path: Path,
    *,
    mailbox_id: int,
    user_id: int,
    identity: Identity,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    report = ImportReport()
    for name, source in folders_of(path):
        async with engine.begin() as conn:
            rows = await mailbox_store.ensure_folders(conn, mailbox_id, {name: None})
        folder_id = int(rows[name]["id"])
        report.folders += 1
        batch: list[NewMessage] = []
        errors: list[tuple[int, str]] = []
        for uid, key in enumerate(sorted(source.iterkeys(), key=str), start=1):
            report.read += 1
            try:
                raw = source.get_bytes(key)
                batch.append(
                    prepare_message(
                        split_header(raw),
                        identity=identity,
                        fallback_date=now,
                        folder_id=folder_id,
                        uid=uid,
                        uidvalidity=FILE_UIDVALIDITY,
                        raw_message=raw[:BODY_PREFIX_BYTES],
                    )
                )
            except Exception as exc:  # a message that cannot be read is recorded and skipped
                errors.append((uid, f"{type(exc).__name__}: {exc}"))
            if len(batch) + len(errors) >= BATCH:
                await _flush(engine, mailbox_id, user_id, folder_id, batch, errors, report)
                batch, errors = [], []
                if progress:
                    progress(name, report.read)
        await _flush(engine, mailbox_id, user_id, folder_id, batch, errors, report)
        if progress:
            progress(name, report.read)
        source.close()
    async with engine.begin() as conn:
        await join_orphans_by_subject(conn, mailbox_id=mailbox_id, identity=identity, now=now)
    return report


async def _flush(
    engine: AsyncEngine,
    mailbox_id: int,
    user_id: int,
    folder_id: int,
    batch: list[NewMessage],
    errors: list[tuple[int, str]],
    report: ImportReport,
) -> None:
    async with engine.begin() as conn:
        stored = await store_batch(
            conn,
            mailbox_id=mailbox_id,
            user_id=user_id,
            folder_id=folder_id,
            batch=batch,
            errors=errors,
        )
    report.new_messages += stored.new_messages
    report.skipped += len(errors)
