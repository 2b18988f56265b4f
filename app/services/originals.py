"""Where the rep's e-mail that a follow-up forwards comes from: fetched whole over IMAP when
the draft is composed (it stays unread), or, for a mailbox imported from a file, the copy
kept at import. The composing itself is the same for both (`services.followups`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from app.errors import MailAnswerTooLarge
from app.mail.blocking import MailThreads
from app.mail.imap import ImapSession
from app.services.context import Context
from app.services.mailboxes import open_mailbox_session
from app.storage import drafts as draft_store
from app.storage import originals as original_store
from app.storage.drafts import MessageLocation
from app.storage.engine import reading
from app.storage.mailboxes import FILE_SOURCE, MailboxRow

log = logging.getLogger(__name__)


class OriginalSource(Protocol):
    async def original(self, message_id: int) -> bytes | None:
        """The whole stored message `message_id` (a `messages.id`), or None when it is gone.
        Raises MailServerError when the server cannot be reached."""

    async def close(self) -> None: ...


async def open_originals(
    ctx: Context, mailbox: MailboxRow, message_ids: Sequence[int]
) -> OriginalSource:
    """The source of the mailbox's messages `message_ids`, ready to read them."""
    if mailbox["auth_method"] == FILE_SOURCE:
        async with reading(ctx.engine) as conn:
            return _Kept(await original_store.originals_of_messages(conn, message_ids))
    async with reading(ctx.engine) as conn:
        locations = await draft_store.locations_of_messages(conn, message_ids)
    return _Fetched(
        await open_mailbox_session(ctx, mailbox),
        locations,
        ctx.mail_io,
        max_bytes=ctx.settings.draft_original_max_bytes,
    )


class _Kept:
    """Copies kept at import, read from the database in one query."""

    def __init__(self, kept: dict[int, bytes]) -> None:
        self._kept = kept

    async def original(self, message_id: int) -> bytes | None:
        return self._kept.get(message_id)

    async def close(self) -> None:
        return None


class _Fetched:
    """BODY.PEEK[] over one IMAP session, trying each copy of the message (Sent first)."""

    def __init__(
        self,
        session: ImapSession,
        locations: dict[int, list[MessageLocation]],
        mail_io: MailThreads,
        *,
        max_bytes: int,
    ) -> None:
        self._session = session
        self._locations = locations
        self._io = mail_io  # blocking IMAP runs on the mail pool, never the shared one
        self._max_bytes = max_bytes

    async def original(self, message_id: int) -> bytes | None:
        for location in self._locations.get(message_id, []):
            try:
                found = await self._io.run(
                    self._session.fetch_message,
                    location.name,
                    location.uid,
                    uidvalidity=location.uidvalidity,
                    max_bytes=self._max_bytes,
                )
            except MailAnswerTooLarge as exc:  # as large in every folder: not forwarded
                log.warning("drafts.original_too_large message=%s error=%s", message_id, exc)
                return None
            if found is not None:
                return found
        return None

    async def close(self) -> None:
        await self._io.run(self._session.close)
