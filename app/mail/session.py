"""What the sync asks of an open IMAP session: the `MailSession` Protocol and its values.

`imap.ImapSession` (imapclient over a socket) is the real one; tests/fakes.py holds an
in-memory server behind the same Protocol, so that the sync loop is unit-tested without
Dovecot. Every method blocks (the sync runs them on the mail thread pool) and raises our
errors only: `MailConnectionError` when the connection is gone (the session is dead then),
`MailServerError` when the server refused a command (the session goes on).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Protocol

from app.domain.folders import FolderInfo


@dataclass(frozen=True, kw_only=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    highest_modseq: int | None
    exists: int


@dataclass(frozen=True, kw_only=True)
class FetchedHeader:
    uid: int
    # INTERNALDATE when the server sent it (the header pass does not ask; see imap._HEADER_ITEMS)
    internal_date_raw: bytes | None
    header: bytes
    gm_msgid: int | None = None
    gm_thrid: int | None = None

    @property
    def internal_date(self) -> datetime | None:
        return parse_internal_date(self.internal_date_raw) if self.internal_date_raw else None


def parse_internal_date(raw: bytes) -> datetime | None:
    """An IMAP INTERNALDATE (`05-Dec-2026 01:20:37 +0000`) in UTC; None when unreadable."""
    try:
        parsed = datetime.strptime(raw.decode(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


class MailSession(Protocol):
    """One logged-in IMAP connection, as the sync and the watch loop use it."""

    @property
    def capabilities(self) -> frozenset[str]: ...

    @property
    def is_gmail(self) -> bool: ...

    @property
    def has_idle(self) -> bool: ...

    def list_folders(self) -> list[FolderInfo]: ...

    def status(self, folder: str) -> FolderStatus:
        """UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ (CONDSTORE only) and the message count, without
        selecting the folder."""
        ...

    def select(self, folder: str) -> FolderStatus:
        """Select `folder` read-only: the fetches and searches below are in it."""
        ...

    def search_uids(
        self, *, min_uid: int, since: date | None, exists: int | None = None
    ) -> array[int]:
        """UIDs >= min_uid (arrived on or after `since`) of the selected folder, ascending."""
        ...

    def window_uids(self, uids: Sequence[int], since: date) -> list[int]:
        """Those of `uids` that arrived on or after `since`, in the order given."""
        ...

    def window_below(self, below: int, since: date) -> array[int]:
        """UIDs under `below` that arrived on or after `since`, ascending."""
        ...

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedHeader]:
        """The header fields of these UIDs (never marking them read); a UID gone is left out."""
        ...

    def fetch_internal_dates(self, uids: Sequence[int]) -> dict[int, datetime]: ...

    def fetch_text_prefixes(self, uids: Sequence[int], size: int = ...) -> dict[int, bytes]:
        """The start of each message's body, after its header; a UID gone is left out."""
        ...

    def idle_until_news(
        self, folder: str, *, renew_after: float, stop: Callable[[], bool], tick: float = ...
    ) -> bool:
        """IDLE on `folder`: True when new mail is announced, False on renewal or `stop()`."""
        ...

    def close(self) -> None:
        """LOGOUT, or just the socket's end when the connection is gone already."""
        ...


class SessionOpener(Protocol):
    """Opens another session with a session's own login (`ImapSession.sibling`): picklable,
    for a first sync's reader process."""

    def open(self) -> MailSession: ...
