"""In-memory twins of the outside world for unit tests: an IMAP server behind `MailSession`.

`FakeImapServer` holds folders of raw messages with their UIDs and answers through
`FakeSession`s the way an IMAP server answers the sync (Dovecot stays for the integration
tests): UIDs ascend and are never reused within a UIDVALIDITY, STATUS/SELECT report UIDNEXT,
HIGHESTMODSEQ (with CONDSTORE) and the message count, SEARCH SINCE compares the arrival date,
a FETCH leaves out UIDs that are gone, the header FETCH returns only the asked-for fields.
Faults are injected per command: the connection dropped (the session is dead afterwards,
as a real one whose socket was shut) or a NO/BAD answer (the session goes on).
"""

from __future__ import annotations

import email.utils
import re
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from app.domain.folders import FolderInfo
from app.domain.headers import FETCH_HEADER_FIELDS
from app.errors import MailConnectionError, MailServerError
from app.mail.answers import Refused, uid_array
from app.mail.imap import TEXT_PREFIX_BYTES
from app.mail.session import FetchedHeader, FolderStatus, MailSession

Command = Literal[
    "list_folders",
    "status",
    "select",
    "search_uids",
    "window_uids",
    "window_below",
    "fetch_headers",
    "fetch_internal_dates",
    "fetch_text_prefixes",
    "idle_until_news",
]
FaultKind = Literal["drop", "no", "bad"]
_WANTED = frozenset(FETCH_HEADER_FIELDS)
_FIELD = re.compile(rb"^([^\s:]+)[ \t]*:")
_IMAP_NAME = {
    "list_folders": "LIST",
    "status": "STATUS",
    "select": "SELECT",
    "search_uids": "UID SEARCH",
    "window_uids": "UID SEARCH",
    "window_below": "UID SEARCH",
    "fetch_headers": "UID FETCH",
    "fetch_internal_dates": "UID FETCH",
    "fetch_text_prefixes": "UID FETCH",
    "idle_until_news": "IDLE",
}


@dataclass
class StoredMessage:
    raw: bytes
    arrived: datetime
    gm_msgid: int | None = None
    gm_thrid: int | None = None

    @property
    def header(self) -> bytes:
        """BODY[HEADER.FIELDS (…)] of the header pass: the asked-for fields, unfolded lines
        kept as they are, then the empty line that ends a header."""
        head, _ = _split(self.raw)
        kept: list[bytes] = []
        keep = False
        for line in head.splitlines(keepends=True):
            if line[:1] in (b" ", b"\t"):  # a folded continuation of the field before
                if keep:
                    kept.append(line)
                continue
            name = _FIELD.match(line)
            keep = name is not None and name.group(1).decode().upper() in _WANTED
            if keep:
                kept.append(line)
        return b"".join(kept) + b"\r\n"

    @property
    def text(self) -> bytes:
        return _split(self.raw)[1]


@dataclass
class FakeFolder:
    name: str
    flags: frozenset[str]
    uidvalidity: int
    uidnext: int = 1
    modseq: int = 1
    messages: dict[int, StoredMessage] = field(default_factory=dict)
    news: bool = False  # an arrival not yet announced to an IDLE

    def status(self, condstore: bool) -> FolderStatus:
        return FolderStatus(
            uidvalidity=self.uidvalidity,
            uidnext=self.uidnext,
            highest_modseq=self.modseq if condstore else None,
            exists=len(self.messages),
        )


@dataclass(frozen=True)
class Fault:
    command: Command
    kind: FaultKind
    after: int  # calls of `command` answered normally before this one fails


class FakeImapServer:
    def __init__(self, *, capabilities: Iterable[str] = ("IMAP4REV1", "IDLE", "CONDSTORE")):
        self.capabilities = frozenset(c.upper() for c in capabilities)
        self.folders: dict[str, FakeFolder] = {}
        self.faults: list[Fault] = []
        self.hooks: list[tuple[Command, int, Callable[[], None]]] = []
        self.header_batches: list[list[int]] = []  # the UIDs of each header FETCH, in order
        self.calls: dict[str, int] = {}
        self.log: list[tuple[str, str]] = []  # (command, its argument), every session's
        self._next_uidvalidity = 1000

    # What the test does to the mailbox.

    def add_folder(self, name: str, *flags: str) -> FakeFolder:
        self._next_uidvalidity += 1
        folder = FakeFolder(name, frozenset(flags), uidvalidity=self._next_uidvalidity)
        self.folders[name] = folder
        return folder

    def deliver(
        self,
        folder: str,
        raw: bytes,
        *,
        arrived: datetime | None = None,
        gm_msgid: int | None = None,
        gm_thrid: int | None = None,
    ) -> int:
        """A new message at the folder's UIDNEXT; its UID."""
        box = self.folders[folder]
        uid = box.uidnext
        when = arrived or _date_of(raw) or datetime.now(UTC)
        box.messages[uid] = StoredMessage(raw, when, gm_msgid, gm_thrid)
        box.uidnext += 1
        box.modseq += 1
        box.news = True
        return uid

    def expunge(self, folder: str, *uids: int) -> None:
        box = self.folders[folder]
        for uid in uids:
            del box.messages[uid]
        box.modseq += 1

    def renumber(self, folder: str) -> None:
        """A new UIDVALIDITY: the same messages under new UIDs from 1 (a restored backup)."""
        box = self.folders[folder]
        self._next_uidvalidity += 1
        box.uidvalidity = self._next_uidvalidity
        kept = [box.messages[uid] for uid in sorted(box.messages)]
        box.messages = {i: m for i, m in enumerate(kept, start=1)}
        box.uidnext = len(kept) + 1
        box.modseq += 1

    def fail(self, command: Command, kind: FaultKind = "drop", *, after: int = 0) -> None:
        """The next `command` after `after` more of them fails, once."""
        self.faults.append(Fault(command, kind, self.calls.get(command, 0) + after))

    def when(self, command: Command, action: Callable[[], None], *, after: int = 0) -> None:
        """Run `action` (an expunge, an arrival …) just before the server answers the next
        `command` after `after` more of them, once: what happens meanwhile on a real server."""
        self.hooks.append((command, self.calls.get(command, 0) + after, action))

    def connect(self) -> FakeSession:
        return FakeSession(self)

    def commands(self) -> list[str]:
        return [name for name, _ in self.log]

    # What a session asks of it.

    def _answer(self, session: FakeSession, command: Command, argument: str = "") -> None:
        """Count and log one command, and raise the fault injected for it, if any."""
        if session.dropped:
            raise MailConnectionError(f"the connection dropped during {_IMAP_NAME[command]}")
        self.log.append((command, argument))
        count = self.calls.get(command, 0)
        self.calls[command] = count + 1
        for hook in [h for h in self.hooks if h[0] == command and h[1] == count]:
            self.hooks.remove(hook)
            hook[2]()
        fault = next((f for f in self.faults if f.command == command and f.after == count), None)
        if fault is None:
            return
        self.faults.remove(fault)
        name = _IMAP_NAME[command]
        if fault.kind == "drop":
            session.dropped = True
            raise MailConnectionError(f"the connection dropped during {name}: EOF")
        words = "NO [SERVERBUG] try again" if fault.kind == "no" else "BAD command unknown"
        # SEARCH and LIST answers are read by `answers`, which says Refused; FETCH by `wire`
        error = Refused if command in ("search_uids", "list_folders") else MailServerError
        raise error(f"the server refused {name}: {words}")


class FakeSession:
    """One logged-in connection to a FakeImapServer: a `MailSession`."""

    def __init__(self, server: FakeImapServer) -> None:
        self.server = server
        self.capabilities = server.capabilities
        self.selected: FakeFolder | None = None
        self.dropped = False
        self.closed = False

    @property
    def is_gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    @property
    def _condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities

    def list_folders(self) -> list[FolderInfo]:
        self.server._answer(self, "list_folders")
        return [FolderInfo(name=f.name, flags=f.flags) for f in self.server.folders.values()]

    def status(self, folder: str) -> FolderStatus:
        self.server._answer(self, "status", folder)
        return self._folder(folder, "STATUS").status(self._condstore)

    def select(self, folder: str) -> FolderStatus:
        self.server._answer(self, "select", folder)
        self.selected = self._folder(folder, "SELECT")
        return self.selected.status(self._condstore)

    def search_uids(
        self, *, min_uid: int, since: date | None, exists: int | None = None
    ) -> array[int]:
        self.server._answer(self, "search_uids", f"{min_uid}:* since={since}")
        box = self._in_selected("UID SEARCH")
        return uid_array(
            uid
            for uid in sorted(box.messages)
            if uid >= min_uid and (since is None or box.messages[uid].arrived.date() >= since)
        )

    def window_uids(self, uids: Sequence[int], since: date) -> list[int]:
        self.server._answer(self, "window_uids", f"{_uid_set(uids)} since={since}")
        box = self._in_selected("UID SEARCH")
        return [
            uid for uid in uids if uid in box.messages and box.messages[uid].arrived.date() >= since
        ]

    def window_below(self, below: int, since: date) -> array[int]:
        self.server._answer(self, "window_below", f"{below} since={since}")
        box = self._in_selected("UID SEARCH")
        return uid_array(
            uid
            for uid in sorted(box.messages)
            if uid < below and box.messages[uid].arrived.date() >= since
        )

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedHeader]:
        self.server._answer(self, "fetch_headers", _uid_set(uids))
        self.server.header_batches.append(list(uids))
        gmail = self.is_gmail
        return [
            FetchedHeader(
                uid=uid,
                internal_date_raw=None,  # not asked for in the header pass
                header=m.header,
                gm_msgid=m.gm_msgid if gmail else None,
                gm_thrid=m.gm_thrid if gmail else None,
            )
            for uid, m in self._present(uids, "UID FETCH")
        ]

    def fetch_internal_dates(self, uids: Sequence[int]) -> dict[int, datetime]:
        self.server._answer(self, "fetch_internal_dates", _uid_set(uids))
        # INTERNALDATE has whole seconds only
        return {uid: m.arrived.replace(microsecond=0) for uid, m in self._present(uids, "FETCH")}

    def fetch_text_prefixes(
        self, uids: Sequence[int], size: int = TEXT_PREFIX_BYTES
    ) -> dict[int, bytes]:
        self.server._answer(self, "fetch_text_prefixes", _uid_set(uids))
        return {uid: m.text[:size] for uid, m in self._present(uids, "UID FETCH")}

    def idle_until_news(
        self, folder: str, *, renew_after: float, stop: Callable[[], bool], tick: float = 2.0
    ) -> bool:
        """Mail delivered since the last IDLE on `folder` is news at once; otherwise the
        renewal time passes at once (no clock in a unit test)."""
        self.server._answer(self, "idle_until_news", folder)
        box = self._folder(folder, "SELECT")
        self.selected = box
        news, box.news = box.news, False
        return news and not stop()

    def close(self) -> None:
        self.closed = True
        self.dropped = True

    def _folder(self, name: str, command: str) -> FakeFolder:
        box = self.server.folders.get(name)
        if box is None:
            raise MailServerError(f"the server refused {command} {name}: NO Mailbox doesn't exist")
        return box

    def _in_selected(self, command: str) -> FakeFolder:
        if self.selected is None:
            raise MailServerError(f"the server refused {command}: BAD No mailbox selected")
        return self.selected

    def _present(self, uids: Sequence[int], command: str) -> list[tuple[int, StoredMessage]]:
        """The asked-for messages still there, in UID order (as a server answers)."""
        box = self._in_selected(command)
        return [(uid, box.messages[uid]) for uid in sorted(set(uids)) if uid in box.messages]


def _split(raw: bytes) -> tuple[bytes, bytes]:
    """(header, body) of a raw message, the header with its last line's end."""
    for end in (b"\r\n\r\n", b"\n\n"):
        at = raw.find(end)
        if at >= 0:
            cut = at + len(end) // 2
            return raw[:cut], raw[cut + len(end) // 2 :]
    return raw, b""


def _date_of(raw: bytes) -> datetime | None:
    match = re.search(rb"^Date:[ \t]*(.+)$", _split(raw)[0], re.MULTILINE | re.IGNORECASE)
    if match is None:
        return None
    try:
        return email.utils.parsedate_to_datetime(match.group(1).decode().strip()).astimezone(UTC)
    except (TypeError, ValueError):
        return None


def _uid_set(uids: Sequence[int]) -> str:
    ordered = sorted(uids)
    return f"{ordered[0]}..{ordered[-1]} ({len(ordered)})" if ordered else "(none)"


def _is_a_mail_session(session: FakeSession) -> MailSession:
    return session  # mypy proves the fake keeps to the Protocol the sync depends on
