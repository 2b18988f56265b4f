"""Read an mbox file or a Maildir (folders included) through the same pipeline as IMAP sync,
so a rep can try the product on an export without giving it their password."""

from __future__ import annotations

import mailbox
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email import message_from_bytes, policy
from email.message import Message
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.incoming import NewMessage
from app.domain.model import Identity, MessageKind
from app.errors import InvalidInput
from app.mail.pipeline import prepare_message
from app.mail.storing import join_orphans_by_subject, store_batch
from app.storage import mailboxes as mailbox_store
from app.storage.originals import keep_originals

BATCH = 500
BODY_PREFIX_BYTES = 65_536  # as much as the body rules read; huge attachments are not parsed
FILE_UIDVALIDITY = 1  # files have no UIDVALIDITY: a message's position in its folder is its UID
# The rep's own e-mails are kept whole (a follow-up forwards them and there is no server to
# fetch them from later); a larger one is kept without its attachments, or not at all.
ORIGINAL_MAX_BYTES = 2 * 1024 * 1024

Progress = Callable[[str, int], None]  # folder, messages read so far


@dataclass
class ImportReport:
    folders: int = 0
    read: int = 0
    new_messages: int = 0
    skipped: int = 0
    originals_kept: int = 0


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
        originals: dict[str, bytes] = {}  # message key -> the rep's own e-mail, whole
        for uid, key in enumerate(sorted(source.iterkeys(), key=str), start=1):
            report.read += 1
            try:
                raw = source.get_bytes(key)
                prepared = prepare_message(
                    split_header(raw),
                    identity=identity,
                    fallback_date=now,
                    folder_id=folder_id,
                    uid=uid,
                    uidvalidity=FILE_UIDVALIDITY,
                    raw_message=raw[:BODY_PREFIX_BYTES],
                )
                batch.append(prepared)
                if prepared.classification.kind is MessageKind.OUTBOUND:
                    kept = original_to_keep(raw)
                    if kept is not None:
                        originals.setdefault(prepared.links.key, kept)
            except Exception as exc:  # a message that cannot be read is recorded and skipped
                errors.append((uid, f"{type(exc).__name__}: {exc}"))
            if len(batch) + len(errors) >= BATCH:
                await _flush(
                    now, engine, mailbox_id, user_id, folder_id, batch, errors, originals, report
                )
                batch, errors, originals = [], [], {}
                if progress:
                    progress(name, report.read)
        await _flush(now, engine, mailbox_id, user_id, folder_id, batch, errors, originals, report)
        if progress:
            progress(name, report.read)
        source.close()
    async with engine.begin() as conn:
        await join_orphans_by_subject(conn, mailbox_id=mailbox_id, identity=identity, now=now)
    return report


async def _flush(
    now: datetime,
    engine: AsyncEngine,
    mailbox_id: int,
    user_id: int,
    folder_id: int,
    batch: list[NewMessage],
    errors: list[tuple[int, str]],
    originals: dict[str, bytes],
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
            now=now,
        )
        kept = await keep_originals(conn, mailbox_id=mailbox_id, originals=originals, now=now)
    report.new_messages += stored.new_messages
    report.skipped += len(errors)
    report.originals_kept += kept


def original_to_keep(raw: bytes, limit: int = ORIGINAL_MAX_BYTES) -> bytes | None:
    """The rep's e-mail as kept for forwarding: whole up to `limit` bytes; above it without
    its attachments (a follow-up re-attaches them only on request); None when even that is
    too large."""
    if len(raw) <= limit:
        return raw
    msg = message_from_bytes(raw, policy=policy.default)
    _drop_attachments(msg)
    slim = msg.as_bytes()
    return slim if len(slim) <= limit else None


def _drop_attachments(msg: Message) -> None:
    if not msg.is_multipart():
        return
    payload = msg.get_payload()
    parts = [p for p in payload if isinstance(p, Message) and not _is_attachment(p)]
    msg.set_payload(parts)  # type: ignore[arg-type]  # a multipart takes its parts
    for part in parts:
        _drop_attachments(part)


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment" or (
        not part.is_multipart() and part.get_content_maintype() not in ("text", "multipart")
    )
