"""The only importer of imapclient: connect, log in, list, select, fetch headers.

imapclient is synchronous and not thread-safe: one session per thread, driven from asyncio
through `asyncio.to_thread`. Every library error leaves this module as one of ours.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from app.domain.folders import FolderInfo
from app.domain.headers import FETCH_HEADER_FIELDS
from app.errors import (
    InvalidInput,
    MailAuthError,
    MailConnectionError,
    MailServerError,
    MailTLSError,
)

Security = Literal["tls", "starttls", "plain"]
FETCH_BATCH = 1000  # UIDs per FETCH command; servers cap command length (and Yahoo at 5,000)
TEXT_PREFIX_BYTES = 8192  # enough for an auto-reply's wording or a DSN's status part
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(FETCH_HEADER_FIELDS) + ")]"
# The server's FETCH item prefix: `* 12 FETCH (UID 345 INTERNALDATE "…" X-GM-THRID 1 … {678}`
_UID_RE = re.compile(rb"UID (\d+)")
_DATE_RE = re.compile(rb'INTERNALDATE "([^"]+)"')
_GM_MSGID_RE = re.compile(rb"X-GM-MSGID (\d+)")
_GM_THRID_RE = re.compile(rb"X-GM-THRID (\d+)")


@dataclass(frozen=True, kw_only=True)
class ImapAccount:
    host: str
    port: int
    security: Security
    username: str
    secret: str  # password, or an OAuth2 access token
    auth_method: Literal["password", "oauth2"] = "password"

    def __repr__(self) -> str:  # never let the secret reach a log line
        return f"ImapAccount({self.username}@{self.host}:{self.port}, {self.security})"


@dataclass(frozen=True, kw_only=True)
class FolderStatus:
    uidvalidity: int
    uidnext: int | None
    highest_modseq: int | None
    exists: int


@dataclass(frozen=True, kw_only=True)
class FetchedHeader:
    uid: int
    internal_date_raw: bytes | None  # parsed only when the Date header is missing or broken
    header: bytes
    gm_msgid: int | None = None
    gm_thrid: int | None = None

    @property
    def internal_date(self) -> datetime | None:
        return _parse_internal_date(self.internal_date_raw) if self.internal_date_raw else None


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_security(host: str, security: Security, *, allow_plaintext: bool) -> None:
    if security == "plain" and not allow_plaintext and not is_loopback(host):
        raise InvalidInput(
            "security 'plain' sends the password unencrypted; it is accepted only for loopback "
            f"hosts, not {host!r}: use 'tls' or 'starttls' "
            "(or set RADIOSILENCE_IMAP_ALLOW_PLAINTEXT)"
        )


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification on, always: system CAs plus the operator's extra CA, if any."""
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=str(ca_file))
    return context


class ImapSession:
    def __init__(self, client: Any, account: ImapAccount) -> None:
        self._client = client
        self.account = account
        # Known after login, from `refresh_capabilities()` (`open()` calls it): asking before
        # login costs a round trip after STARTTLS, and a server may announce more after it.
        self.capabilities: frozenset[str] = frozenset()
        self.round_trips = 0
        # An OAuth2 token the refresh hook produced for this session: the caller stores it.
        self.renewed_secret: str | None = None
        # Every command, through imaplib or imapclient, takes a new tag: count them there.
        raw = client._imap
        new_tag = raw._new_tag

        def counting_new_tag() -> bytes:
            self.round_trips += 1
            tag: bytes = new_tag()
            return tag

        raw._new_tag = counting_new_tag

    @classmethod
    def open(
        cls,
        account: ImapAccount,
        *,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        allow_plaintext: bool = False,
    ) -> Self:
        check_security(account.host, account.security, allow_plaintext=allow_plaintext)
        where = f"{account.host}:{account.port}"
        context = tls_context(ca_file)
        try:
            client = imapclient.IMAPClient(
                account.host,
                port=account.port,
                ssl=account.security == "tls",
                ssl_context=context,
                timeout=timeout,
            )
            if account.security == "starttls":
                client.starttls(context)
        except ssl.SSLCertVerificationError as exc:
            raise MailTLSError(
                f"the TLS certificate of {where} could not be verified ({exc.verify_message}): "
                "fix the server's certificate or trust its CA with RADIOSILENCE_IMAP_CA_FILE"
            ) from None
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            raise MailConnectionError(
                f"could not connect to {where}: {_words(exc)} — check host, port and security"
            ) from None
        session = cls(client, account)
        session._login()
        session.refresh_capabilities()
        return session

    def _login(self) -> None:
        a = self.account
        try:
            if a.auth_method == "oauth2":
                self._client.oauth2_login(a.username, a.secret)
            else:
                self._client.login(a.username, a.secret)
        except (LoginError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailAuthError(
                f"the server refused the login for {a.username}: {_words(exc)} — check the "
                + ("OAuth2 token" if a.auth_method == "oauth2" else "password or app password")
            ) from None
        except OSError as exc:
            self.close()
            raise MailConnectionError(f"connection lost during login: {_words(exc)}") from None

    def refresh_capabilities(self) -> None:
        """After login a server may announce more (CONDSTORE, IDLE …) than in its greeting."""
        with _errors("CAPABILITY"):
            caps = self._client.capabilities()
        self.capabilities = frozenset(
            c.decode().upper() if isinstance(c, bytes) else str(c).upper() for c in caps
        )

    @property
    def is_gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    @property
    def has_condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def idle_until_news(
        self, folder: str, *, renew_after: float, stop: Callable[[], bool], tick: float = 2.0
    ) -> bool:
        """IDLE on `folder` until the server announces new mail (True), or `renew_after`
        seconds pass or `stop()` says so (False). Checked every `tick` seconds, so that a
        shutdown is never held up; RFC 2177 asks to re-issue IDLE within 29 minutes."""
        with _errors(f"SELECT {folder}"):
            self._client.select_folder(folder, readonly=True)
        deadline = time.monotonic() + renew_after
        with _errors("IDLE"):
            self._client.idle()
            try:
                while time.monotonic() < deadline and not stop():
                    for response in self._client.idle_check(timeout=tick):
                        if len(response) > 1 and response[1] in (b"EXISTS", b"RECENT"):
                            return True
                return False
            finally:
                self._client.idle_done()

    def status(self, folder: str) -> FolderStatus:
        """One round trip: enough to tell whether a folder has anything new."""
        what = ["UIDNEXT", "UIDVALIDITY", "MESSAGES"]
        if self.has_condstore:
            what.append("HIGHESTMODSEQ")
        with _errors(f"STATUS {folder}"):
            info = self._client.folder_status(folder, what)
        return FolderStatus(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
            highest_modseq=int(info[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in info else None,
            exists=int(info.get(b"MESSAGES", 0)),
        )

    def list_folders(self) -> list[FolderInfo]:
        with _errors("LIST"):
            listed = self._client.list_folders()
        return [
            FolderInfo(
                name=name,
                flags=frozenset(f.decode() if isinstance(f, bytes) else str(f) for f in flags),
                delimiter=(delim.decode() if isinstance(delim, bytes) else delim) or "/",
            )
            for flags, delim, name in listed
        ]

    def select(self, folder: str) -> FolderStatus:
        with _errors(f"SELECT {folder}"):
            info = self._client.select_folder(folder, readonly=True)
        return FolderStatus(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
            highest_modseq=int(info[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in info else None,
            exists=int(info.get(b"EXISTS", 0)),
        )

    def search_uids(self, *, min_uid: int, since: date | None) -> list[int]:
        """UIDs >= min_uid (and on or after `since`), ascending. Filtered here too, because
        `UID n:*` always includes the highest message even when its UID is below n."""
        criteria: list[Any] = ["UID", f"{min_uid}:*"]
        if since is not None:
            criteria += ["SINCE", since]
        with _errors("UID SEARCH"):
            uids = self._client.search(criteria)
        return sorted(int(u) for u in uids if int(u) >= min_uid)

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedHeader]:
        """The header fields the decisions need, with BODY.PEEK so nothing is marked read.

        The fast path: imaplib's raw response, split by a few regexes. imapclient's generic
        response parser is about eight times slower than the wire on large mailboxes.
        """
        items = "UID INTERNALDATE " + _HEADER_ITEM
        if self.is_gmail:
            items = "UID INTERNALDATE X-GM-MSGID X-GM-THRID " + _HEADER_ITEM
        out: list[FetchedHeader] = []
        for chunk in _chunks(uids, FETCH_BATCH):
            for prefix, literal in self._uid_fetch(chunk, items):
                uid = _UID_RE.search(prefix)
                if uid is None:  # an unsolicited FETCH (flag change) without a UID
                    continue
                out.append(
                    FetchedHeader(
                        uid=int(uid.group(1)),
                        internal_date_raw=_int_match_raw(_DATE_RE, prefix),
                        header=literal,
                        gm_msgid=_int_match(_GM_MSGID_RE, prefix),
                        gm_thrid=_int_match(_GM_THRID_RE, prefix),
                    )
                )
        return out

    def fetch_text_prefixes(
        self, uids: Sequence[int], size: int = TEXT_PREFIX_BYTES
    ) -> dict[int, bytes]:
        """The start of each message's body (after its header), never setting \\Seen."""
        out: dict[int, bytes] = {}
        for chunk in _chunks(uids, FETCH_BATCH):
            for prefix, literal in self._uid_fetch(chunk, f"UID BODY.PEEK[TEXT]<0.{size}>"):
                uid = _UID_RE.search(prefix)
                if uid is not None:
                    out[int(uid.group(1))] = literal
        return out

    def _uid_fetch(self, uids: Sequence[int], items: str) -> list[tuple[bytes, bytes]]:
        """(item prefix, literal) pairs of a UID FETCH; a message without the literal gets b""."""
        raw = self._client._imap
        with _errors("UID FETCH"):
            typ, data = raw.uid("FETCH", _uid_set(uids), f"({items})")
        if typ != "OK":
            raise MailServerError(f"the server refused UID FETCH: {_words(Exception(data))}")
        pairs: list[tuple[bytes, bytes]] = []
        for i, part in enumerate(data):
            if isinstance(part, tuple):
                # Items after the literal (a server may send UID last) arrive as the next part.
                after = data[i + 1] if i + 1 < len(data) else b""
                suffix = after if isinstance(after, bytes) else b""
                pairs.append((part[0] + b" " + suffix, part[1]))
            elif isinstance(part, bytes) and b" FETCH " in part[:40]:
                pairs.append((part, b""))  # e.g. an empty body: no literal at all
        return pairs

    def close(self) -> None:
        try:
            self._client.logout()
        except Exception:  # already gone: close the socket and move on
            with contextlib.suppress(Exception):
                self._client.shutdown()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Drafts: one message's full body, APPEND, find and remove by Message-ID.

    def fetch_message(
        self, folder: str, uid: int, *, uidvalidity: int | None = None
    ) -> bytes | None:
        """The whole message (BODY.PEEK[]: never marks it read), or None when it is gone or
        the folder was renumbered since `uidvalidity`."""
        selected = self.select(folder)
        if uidvalidity is not None and selected.uidvalidity != uidvalidity:
            return None
        with _errors("UID FETCH"):
            found = self._client.fetch([uid], ["BODY.PEEK[]"])
        data = found.get(uid, {}).get(b"BODY[]")
        return bytes(data) if data is not None else None

    def append(self, folder: str, message: bytes, flags: Sequence[str]) -> tuple[int, int | None]:
        """APPEND with `flags` and no INTERNALDATE (the server's clock applies, as for a draft
        saved by a mail client). Returns (uidvalidity, uid): the uid from APPENDUID (UIDPLUS),
        None when the server does not say."""
        with _errors(f"APPEND {folder}"):
            answer = self._client.append(folder, message, flags=tuple(flags), msg_time=None)
        text = answer.decode(errors="replace") if isinstance(answer, bytes) else str(answer)
        match = re.search(r"\[APPENDUID (\d+) (\d+)\]", text, re.IGNORECASE)
        if match:
            return int(match.group(1)), int(match.group(2))
        with _errors(f"STATUS {folder}"):
            status = self._client.folder_status(folder, ["UIDVALIDITY"])
        return int(status[b"UIDVALIDITY"]), None

    def find_message_id(self, folder: str, message_id: str) -> list[int]:
        """UIDs in `folder` whose Message-ID header is `message_id`."""
        with _errors(f"SELECT {folder}"):
            self._client.select_folder(folder, readonly=True)
        with _errors("UID SEARCH"):
            uids = self._client.search(["HEADER", "Message-ID", message_id])
        return sorted(int(u) for u in uids)

    def delete_messages(self, folder: str, uids: Sequence[int]) -> None:
        """Flag \\Deleted and, with UIDPLUS, expunge exactly these UIDs (a plain EXPUNGE would
        also remove whatever else the rep had flagged)."""
        if not uids:
            return
        with _errors(f"SELECT {folder}"):
            self._client.select_folder(folder, readonly=False)
        with _errors("UID STORE"):
            self._client.add_flags(list(uids), [imapclient.DELETED], silent=True)
        if "UIDPLUS" in self.capabilities:
            with _errors("UID EXPUNGE"):
                self._client.uid_expunge(list(uids))


class _errors:
    """Map library and socket errors of one command to ours, with the server's words."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if isinstance(exc, (imaplib.IMAP4.abort, OSError, socket.timeout)):
            raise MailConnectionError(
                f"the connection dropped during {self.command}: {_words(exc)}"
            ) from exc
        if isinstance(exc, (IMAPClientError, imaplib.IMAP4.error)):
            raise MailServerError(f"the server refused {self.command}: {_words(exc)}") from exc


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _uid_set(uids: Sequence[int]) -> str:
    """Compress sorted runs into ranges (1:500) so that a batch stays a short command."""
    ordered = sorted(set(uids))
    parts: list[str] = []
    start = prev = ordered[0]
    for uid in ordered[1:]:
        if uid == prev + 1:
            prev = uid
            continue
        parts.append(f"{start}:{prev}" if prev != start else str(start))
        start = prev = uid
    parts.append(f"{start}:{prev}" if prev != start else str(start))
    return ",".join(parts)


def _int_match_raw(pattern: re.Pattern[bytes], prefix: bytes) -> bytes | None:
    match = pattern.search(prefix)
    return match.group(1) if match else None


def _parse_internal_date(raw: bytes) -> datetime | None:
    try:
        parsed = datetime.strptime(raw.decode(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def _int_match(pattern: re.Pattern[bytes], prefix: bytes) -> int | None:
    match = pattern.search(prefix)
    return int(match.group(1)) if match else None


def _words(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text or type(exc).__name__
