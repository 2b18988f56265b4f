"""The only importer of imapclient: connect, log in, list, select, fetch headers.

imapclient is synchronous and not thread-safe: one session per thread, driven from asyncio
on the mail thread pool (`mail.blocking`). Every library error leaves this module as one of ours.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import imaplib
import ipaddress
import logging
import re
import socket
import ssl
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

import imapclient
from imapclient import imap4, tls
from imapclient.datetime_util import format_criteria_date
from imapclient.exceptions import IMAPClientError, LoginError

from app.domain.folders import FolderInfo
from app.domain.headers import FETCH_HEADER_FIELDS
from app.errors import (
    InvalidInput,
    MailAnswerTooLarge,
    MailAuthError,
    MailConnectionError,
    MailServerError,
    MailTLSError,
)
from app.mail import answers, wire
from app.mail.imaplib_internals import RawImap
from app.mail.session import FetchedHeader as FetchedHeader
from app.mail.session import FolderStatus as FolderStatus
from app.mail.session import MailSession, parse_internal_date

log = logging.getLogger(__name__)
Security = Literal["tls", "starttls", "plain"]
T = TypeVar("T")
FETCH_BATCH = 1000  # UIDs per FETCH command; servers cap command length (and Yahoo at 5,000)
# Without ESEARCH a `* SEARCH` answer lists every UID: a large folder is searched in slices of
# this many messages, newest first, so that each answer stays small (at most ~550 kB of 10-digit
# UIDs). With ESEARCH (RFC 4731) one command answers in compact ranges, read as it comes.
SEARCH_SPAN = 50_000
# The most UIDs one folder's search may return, a bound on memory: the sync holds a folder's
# window as Python ints, ~40 bytes each plus ~16 for its batches (600,000 of them: ~35 MB).
SEARCH_UID_LIMIT = 3_000_000
TEXT_PREFIX_BYTES = 8192  # enough for an auto-reply's wording or a DSN's status part
_HEADER_ITEM = b"BODY.PEEK[HEADER.FIELDS (" + " ".join(FETCH_HEADER_FIELDS).encode() + b")]"
# No INTERNALDATE in the header pass: it is only the fallback for a message whose Date header
# is missing or broken, and it costs the server a stat() and a formatted date per message (a
# third of Dovecot's work here). The sync asks for it (`fetch_internal_dates`) for exactly the
# messages whose Date the header parser could not read.
_HEADER_ITEMS = b"UID " + _HEADER_ITEM
_HEADER_ITEMS_GMAIL = b"UID X-GM-MSGID X-GM-THRID " + _HEADER_ITEM


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
class SessionRecipe:
    """What `ImapSession.open` was given: the same login again, to the same checked
    addresses, from another process (a first sync's reader). Holds the secret: never logged."""

    account: ImapAccount
    ca_file: Path | None
    timeout: float
    connect_timeout: float | None
    allow_plaintext: bool
    addresses: tuple[str, ...] | None

    def __repr__(self) -> str:
        return f"SessionRecipe({self.account!r})"

    def open(self) -> ImapSession:
        return ImapSession.open(
            self.account,
            ca_file=self.ca_file,
            timeout=self.timeout,
            connect_timeout=self.connect_timeout,
            allow_plaintext=self.allow_plaintext,
            addresses=self.addresses,
        )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str) -> None:
    """A name a connection can be opened to (an IDNA-encodable host name or an IP address),
    else InvalidInput: the socket layer would fail on it with a UnicodeError instead."""
    if not host or any(c.isspace() or not c.isprintable() for c in host):
        raise InvalidInput(f"host {host!r} is not a host name or IP address")
    try:
        host.encode("idna")
    except UnicodeError as exc:
        raise InvalidInput(f"host {host!r} is not a valid host name: {exc}") from None


def check_security(host: str, security: Security, *, allow_plaintext: bool) -> None:
    if security == "plain" and not allow_plaintext and not is_loopback(host):
        raise InvalidInput(
            "security 'plain' sends the password unencrypted; it is accepted only for loopback "
            f"hosts, not {host!r}: use 'tls' or 'starttls' "
            "(or set RADIOSILENCE_IMAP_ALLOW_PLAINTEXT)"
        )


def unreachable(kind: str, where: str, security: str) -> str:
    """The one answer for every way a connection can fail before the server has spoken:
    refused, unreachable, timed out, a TLS handshake or certificate that failed, a greeting
    that is not the protocol's. Telling them apart would show a user what listens where on
    any address the server reaches (the cause is logged for the operator)."""
    return (
        f"could not connect to an {kind} server at {where} with security {security}: "
        "nothing answered, the connection was refused or TLS failed — check host, port and "
        "security (a server whose certificate comes from a private CA needs "
        "RADIOSILENCE_IMAP_CA_FILE)"
    )


def connect_socket(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of the checked `addresses` that takes it (never to a
    name: resolving again could give another, unchecked, address)."""
    error: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout=timeout)
        except OSError as exc:
            error = exc
    raise error


class _PinnedPlain(imap4.IMAP4WithTimeout):  # type: ignore[misc]
    def __init__(self, host: str, port: int, timeout: float | None, addresses: Sequence[str]):
        self._addresses = addresses
        super().__init__(host, port, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return connect_socket(self._addresses, self.port, timeout or self._timeout)


class _PinnedTLS(tls.IMAP4_TLS):  # type: ignore[misc]
    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        timeout: float | None,
        addresses: Sequence[str],
    ):
        self._addresses = addresses
        super().__init__(host, port, context, timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = connect_socket(self._addresses, self.port, timeout or self._timeout)
        wrapped: socket.socket = tls.wrap_socket(sock, self.ssl_context, self.host)
        return wrapped  # SNI and the certificate check use the host name


class _PinnedClient(imapclient.IMAPClient):  # type: ignore[misc]
    """IMAPClient connecting to checked addresses; TLS still verifies the host name."""

    def __init__(self, host: str, *, addresses: Sequence[str], **options: Any) -> None:
        self._addresses = addresses
        super().__init__(host, **options)

    def _create_IMAP4(self) -> imaplib.IMAP4:
        connect_timeout = self._timeout.connect
        if self.ssl:
            return _PinnedTLS(
                self.host, self.port, self.ssl_context, connect_timeout, self._addresses
            )
        return _PinnedPlain(self.host, self.port, connect_timeout, self._addresses)


@functools.lru_cache(maxsize=8)
def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """Verification on, always: system CAs plus the operator's extra CA, if any. One per CA
    file for the whole process, shared by every connection (an SSLContext is thread-safe and
    each holds its own copy of the CA store: about 0.8 MB, 400 MB for 500 IDLE sessions)."""
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
        # How to open a second connection like this one (`open()` sets it): a first sync's
        # reader process logs in with it.
        self.sibling: SessionRecipe | None = None
        # The folder open read-only now and its status when opened (`_select_folder` keeps it).
        self._examined: tuple[str, FolderStatus] | None = None
        # Every command, through imaplib or imapclient, takes a new tag: count them there.
        self._raw = RawImap(client)
        self._raw.count_tags(self._count_round_trip)

    def _count_round_trip(self) -> None:
        self.round_trips += 1

    @classmethod
    def open(
        cls,
        account: ImapAccount,
        *,
        ca_file: Path | None = None,
        timeout: float = 30.0,
        connect_timeout: float | None = None,
        allow_plaintext: bool = False,
        addresses: Sequence[str] | None = None,
    ) -> Self:
        """Connect and log in. `addresses`: the host's addresses as checked by the caller's
        guard, the only ones connected to (None: the host name, resolved here — for tests
        and tools only). `connect_timeout` bounds the connection, TLS and the greeting."""
        check_security(account.host, account.security, allow_plaintext=allow_plaintext)
        where = f"{account.host}:{account.port}"
        context = tls_context(ca_file)
        limits = imapclient.SocketTimeout(connect=connect_timeout or timeout, read=timeout)
        options: dict[str, Any] = {
            "port": account.port,
            "ssl": account.security == "tls",
            "ssl_context": context,
            "timeout": limits,
        }
        try:
            if addresses is None:
                client = imapclient.IMAPClient(account.host, **options)
            else:
                client = _PinnedClient(account.host, addresses=addresses, **options)
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            log.info("imap.connect_failed where=%s cause=%s", where, _words(exc))
            raise MailConnectionError(unreachable("IMAP", where, account.security)) from None
        try:
            if account.security == "starttls":
                client.starttls(context)
        except ssl.SSLCertVerificationError as exc:
            # The server has spoken IMAP already: what failed may be said.
            _shut(client)
            raise MailTLSError(
                f"the TLS certificate of {where} could not be verified ({exc.verify_message}): "
                "fix the server's certificate or trust its CA with RADIOSILENCE_IMAP_CA_FILE"
            ) from None
        except (OSError, IMAPClientError, imaplib.IMAP4.error) as exc:
            _shut(client)
            raise MailConnectionError(
                f"STARTTLS with {where} failed: {_words(exc)} — check host, port and security"
            ) from None
        session = cls(client, account)
        session._login()
        session.refresh_capabilities()
        session.sibling = SessionRecipe(
            account=account,
            ca_file=ca_file,
            timeout=timeout,
            connect_timeout=connect_timeout,
            allow_plaintext=allow_plaintext,
            addresses=tuple(addresses) if addresses is not None else None,
        )
        return session

    def _login(self) -> None:
        a = self.account
        try:
            if a.auth_method == "oauth2":
                self._client.oauth2_login(a.username, a.secret)
            elif (a.username + a.secret).isascii():
                self._client.login(a.username, a.secret)
            else:
                # LOGIN carries ASCII only (imaplib raises on anything else); SASL PLAIN is
                # UTF-8 (RFC 4616), so a password such as "Grüße-2026" still gets through.
                self._client.plain_login(a.username, a.secret)
        except (LoginError, imaplib.IMAP4.error) as exc:
            self.close()
            raise MailAuthError(
                f"the server refused the login for {a.username}: {_words(exc)} — check the "
                + ("OAuth2 token" if a.auth_method == "oauth2" else "password or app password")
            ) from None
        except OSError as exc:
            self.close()
            raise MailConnectionError(f"connection lost during login: {_words(exc)}") from None
        except UnicodeError:  # e.g. a non-ASCII OAuth2 token: no server would accept it
            self.close()
            raise MailAuthError(
                f"the login for {a.username} contains characters the server cannot be sent"
            ) from None

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
    def has_esearch(self) -> bool:
        return "ESEARCH" in self.capabilities

    @property
    def has_idle(self) -> bool:
        return "IDLE" in self.capabilities

    def idle_until_news(
        self, folder: str, *, renew_after: float, stop: Callable[[], bool], tick: float = 2.0
    ) -> bool:
        """IDLE on `folder` until the server announces new mail (True), or `renew_after`
        seconds pass or `stop()` says so (False). Checked every `tick` seconds, so that a
        shutdown is never held up; RFC 2177 asks to re-issue IDLE within 29 minutes."""
        self._select_folder(folder)
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

    def identify(self, fields: dict[str, str]) -> None:
        """Say who connects (RFC 2971 ID) when the server supports it, so that its log names
        the worker process and what the connection is for. Never fails the session: a server
        that answers badly is simply not told."""
        if "ID" not in self.capabilities:
            return
        try:
            self._client.id_(fields)
        except (IMAPClientError, imaplib.IMAP4.error) as exc:
            log.info("imap.id_refused cause=%s", _words(exc))

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
        """Every folder, through imapclient's parser but read within our bounds (a line, and
        the number of folders: `answers.read_list`)."""
        command = b'LIST "" "*"'
        data = self._command(
            command, "LIST", lambda tag: answers.read_list(self._file, tag, "LIST")
        )
        with _errors("LIST"):
            listed = self._raw.parse_folder_list(data)
        return [
            FolderInfo(
                name=name,
                flags=frozenset(f.decode() if isinstance(f, bytes) else str(f) for f in flags),
                delimiter=(delim.decode() if isinstance(delim, bytes) else delim) or "/",
            )
            for flags, delim, name in listed
        ]

    def select(self, folder: str) -> FolderStatus:
        """Open `folder` read-only, and its status as of now."""
        return self._select_folder(folder)

    def _select_folder(self, folder: str, *, readonly: bool = True) -> FolderStatus:
        """Every SELECT of the session goes through here, so that `_examined` always says
        what is open (nothing once a SELECT fails: the server has closed the old one)."""
        self._examined = None
        with _errors(f"SELECT {folder}"):
            info = self._client.select_folder(folder, readonly=readonly)
        status = FolderStatus(
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
            highest_modseq=int(info[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in info else None,
            exists=int(info.get(b"EXISTS", 0)),
        )
        if readonly:
            self._examined = (folder, status)
        return status

    def _open_read_only(self, folder: str) -> FolderStatus:
        """`folder` open read-only, selected only when another one is open. A SELECT is not
        free: it costs the server a mailbox open and, on Maildir, a scan of the folder's
        files at the next body fetch (50-160 ms of Dovecot's CPU for a folder of
        40,000-60,000). Its UIDVALIDITY cannot change while it is open."""
        if self._examined is not None and self._examined[0] == folder:
            return self._examined[1]
        return self.select(folder)

    def search_uids(
        self, *, min_uid: int, since: date | None, exists: int | None = None
    ) -> array[int]:
        """UIDs >= min_uid (and on or after `since`) in the selected folder, ascending.

        With ESEARCH, one command whose answer comes in compact ranges. Without it, the folder's
        `exists` messages are searched in slices of SEARCH_SPAN message numbers from the top
        down (newest first, as the first sync reads), so that no answer is one huge line. Slices
        of message numbers, not of UIDs: UIDs may be sparse (years of deletions, Gmail), message
        numbers are dense, so every slice holds at most SEARCH_SPAN. An expunge meanwhile only
        shifts messages down into a slice still to come: seen twice, never missed. The top slice
        is open (`n:*`) to take what arrived since `exists` was read. Filtered here too, because
        `UID n:*` always includes the highest message even when its UID is below n.
        The UIDs come back in a compact array (4 bytes each), ascending."""
        window = b"UID %d:*" % min_uid
        if since is not None:
            window += b" SINCE " + format_criteria_date(since)
        if self.has_esearch or exists is None or exists <= SEARCH_SPAN:
            return _from(_ascending(self._search(window, SEARCH_UID_LIMIT)), min_uid)
        slices: list[array[int]] = []  # newest first
        held = 0
        top, upper = exists, b"*"
        while top >= 1:
            low = max(1, top - SEARCH_SPAN + 1)
            answer = self._search(b"%d:%s %s" % (low, upper, window), SEARCH_UID_LIMIT - held)
            kept = _from(_ascending(answer), min_uid)
            slices.append(kept)
            held += len(kept)
            if since is None and min_uid > 1 and len(kept) < top - low + 1:
                break  # this slice reaches below min_uid already: those beneath are older
            top, upper = low - 1, b"%d" % (low - 1)
        found = answers.uid_array()
        for kept in reversed(slices):  # oldest slice first: ascending unless one moved
            found.extend(kept)
        return _ascending(found)

    def window_uids(self, uids: Sequence[int], since: date) -> list[int]:
        """Those of `uids` (of the selected folder, in any order) that arrived on or after
        `since`, in the order given. One SEARCH over their range: SINCE costs the server
        about 3 us a message searched (Dovecot), so a first sync asks it of each batch
        instead of the whole folder up front (180 ms for 60,000 messages before the first
        batch could start)."""
        if not uids:
            return []
        low, high = min(uids), max(uids)
        window = b"UID %d:%d SINCE %s" % (low, high, format_criteria_date(since))
        found = set(self._search(window, len(uids) + 1))  # a range holds no UIDs but these
        return [uid for uid in uids if uid in found]

    def window_below(self, below: int, since: date) -> array[int]:
        """UIDs under `below` that arrived on or after `since`, ascending: the rest of a
        first read's window, asked once its batches have reached mail older than it."""
        if below <= 1:
            return answers.uid_array()
        window = b"UID 1:%d SINCE %s" % (below - 1, format_criteria_date(since))
        return _ascending(self._search(window, SEARCH_UID_LIMIT))

    def _search(self, criteria: bytes, limit: int) -> array[int]:
        """One UID SEARCH (RETURN (ALL) with ESEARCH), read by `answers.read_search`."""
        returning = b"RETURN (ALL) " if self.has_esearch else b""
        command = b"UID SEARCH " + returning + criteria
        return self._command(
            command,
            "UID SEARCH",
            lambda tag: answers.read_search(self._file, tag, "UID SEARCH", max_uids=limit),
        )

    @property
    def _file(self) -> answers.LineSource:
        return self._raw.file

    def _command(self, command: bytes, name: str, read: Callable[[bytes], T]) -> T:
        """Send one command and read its answer here, not by imaplib (see `answers`): the tag
        comes from imaplib, so round trips are counted and its tag sequence goes on."""
        raw = self._raw
        tag = raw.new_tag()
        try:
            with _errors(name):
                raw.send(b"%s %s\r\n" % (tag, command))
            return read(tag)
        except BaseException as exc:
            # A refusal read to its end leaves the session usable; anything else (a bound hit
            # mid-answer, the server leaving) leaves bytes no later command may read.
            if not isinstance(exc, answers.Refused):
                with contextlib.suppress(Exception):
                    raw.shutdown()
            raise
        finally:
            raw.forget(tag)

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedHeader]:
        """The header fields the decisions need, with BODY.PEEK so nothing is marked read.

        The fast path: `wire` parses the responses off the socket as they arrive, and each
        FetchedHeader is built meanwhile; imaplib's line-by-line reader cost more than the
        server's own work.
        """
        items = _HEADER_ITEMS_GMAIL if self.is_gmail else _HEADER_ITEMS
        others: dict[int, wire.FetchRecord] = {}

        def built(
            uid: int,
            date: bytes | None,
            gm_msgid: int | None,
            gm_thrid: int | None,
            header: bytes | None,
            text: bytes | None,
        ) -> FetchedHeader | None:
            if header is None:  # e.g. a flag change the server announced on its own
                others[uid] = wire.FetchRecord(uid, date, gm_msgid, gm_thrid)
                return None
            return FetchedHeader(
                uid=uid, internal_date_raw=date, header=header, gm_msgid=gm_msgid, gm_thrid=gm_thrid
            )

        out: list[FetchedHeader] = []
        for chunk in _chunks(uids, FETCH_BATCH):
            out += self._uid_fetch(chunk, items, built)
        if others:  # a server may split one message's items over two responses
            out = [_completed(item, others.get(item.uid)) for item in out]
        return out

    def fetch_internal_dates(self, uids: Sequence[int]) -> dict[int, datetime]:
        """When the server received each message (INTERNALDATE): the fallback for a message
        whose Date header is missing or unreadable. A UID gone meanwhile is left out."""
        out: dict[int, datetime] = {}
        for chunk in _chunks(uids, FETCH_BATCH):
            for record in self._uid_fetch(chunk, b"UID INTERNALDATE", wire.FetchRecord):
                when = parse_internal_date(record.internal_date) if record.internal_date else None
                if when is not None:
                    out[record.uid] = when
        return out

    def fetch_text_prefixes(
        self, uids: Sequence[int], size: int = TEXT_PREFIX_BYTES
    ) -> dict[int, bytes]:
        """The start of each message's body (after its header), never setting \\Seen."""
        out: dict[int, bytes] = {}
        items = b"UID BODY.PEEK[TEXT]<0.%d>" % size
        for chunk in _chunks(uids, FETCH_BATCH):
            for record in self._uid_fetch(chunk, items, wire.FetchRecord):
                if record.text is not None:
                    out[record.uid] = record.text
        return out

    def _uid_fetch(
        self,
        uids: Sequence[int],
        items: bytes,
        make: wire.Make[T],
        *,
        limit: int = wire.RESPONSE_LIMIT,
    ) -> list[T]:
        """One UID FETCH, sent and read here rather than by imaplib (see `wire`), each
        response at most `limit` bytes. The tag comes from imaplib, so round trips are
        counted and its tag sequence goes on unbroken."""
        raw = self._raw
        tag = raw.new_tag()
        parser = wire.FetchParser(tag, make, limit=limit)
        try:
            command = b"%s UID FETCH %s (%s)\r\n" % (tag, _uid_set(uids).encode(), items)
            with _errors("UID FETCH"):
                raw.send(command)
            return wire.read_fetch(raw.file, parser)
        except BaseException as exc:
            if not parser.done or isinstance(exc, MailConnectionError):
                # The rest of the response is unread, or the server is leaving: no later
                # command may read what is left.
                with contextlib.suppress(Exception):
                    raw.shutdown()
            raise
        finally:
            raw.forget(tag)

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
        self, folder: str, uid: int, *, max_bytes: int, uidvalidity: int | None = None
    ) -> bytes | None:
        """The whole message (BODY.PEEK[]: never marks it read), or None when it is gone or
        the folder was renumbered since `uidvalidity`. One larger than `max_bytes` is not
        read: its size is asked first (RFC822.SIZE) and MailAnswerTooLarge says it; a server
        that then sends more than that bound is cut off there (the session is closed)."""
        selected = self._open_read_only(folder)
        if uidvalidity is not None and selected.uidvalidity != uidvalidity:
            return None
        with _errors("UID FETCH"):
            found = self._client.fetch([uid], ["RFC822.SIZE"])
        size = found.get(uid, {}).get(b"RFC822.SIZE")
        if size is None:
            return None
        if (size := int(size)) > max_bytes:
            raise MailAnswerTooLarge(
                f"the e-mail (UID {uid} in {folder}) is {size:,} bytes, more than the "
                f"{max_bytes:,} this service reads of one e-mail"
            )
        # Read off the socket here (`wire`), where a response's size is bounded before it is
        # buffered; imaplib would read any literal whole. The slack is the response's own line.
        records = self._uid_fetch(
            [uid], b"UID BODY.PEEK[]", wire.FetchRecord, limit=max_bytes + 64 * 1024
        )
        return next((r.text for r in records if r.uid == uid and r.text is not None), None)

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
        self._select_folder(folder)
        with _errors("UID SEARCH"):
            uids = self._client.search(["HEADER", "Message-ID", message_id])
        return sorted(int(u) for u in uids)

    def delete_messages(self, folder: str, uids: Sequence[int]) -> None:
        """Flag \\Deleted and, with UIDPLUS, expunge exactly these UIDs (a plain EXPUNGE would
        also remove whatever else the rep had flagged)."""
        if not uids:
            return
        self._select_folder(folder, readonly=False)
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
        if isinstance(exc, imaplib.IMAP4.error) and (
            limit := re.fullmatch(r"got more than (\d+) bytes", str(exc))
        ):  # imaplib's own line limit, not the server's words
            raise MailAnswerTooLarge(
                f"a line of the answer to {self.command} was larger than "
                f"{int(limit.group(1)):,} bytes, the most this client reads in one line: "
                "the server did not refuse anything"
            ) from exc
        if isinstance(exc, (IMAPClientError, imaplib.IMAP4.error)):
            raise MailServerError(f"the server refused {self.command}: {_words(exc)}") from exc


def _shut(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.shutdown()


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _ascending(uids: array[int]) -> array[int]:
    """`uids` sorted, each once (a slice may repeat one after an expunge). Servers answer in
    ascending order, so that is checked first and nothing is copied; otherwise one sort."""
    if all(uids[i - 1] < uids[i] for i in range(1, len(uids))):
        return uids
    return answers.uid_array(sorted(set(uids)))


def _from(uids: array[int], min_uid: int) -> array[int]:
    """Those of the ascending `uids` from `min_uid` on."""
    start = bisect.bisect_left(uids, min_uid)
    return uids[start:] if start else uids


def _uid_set(uids: Sequence[int]) -> str:
    """Compress sorted runs into ranges (1:500) so that a batch stays a short command."""
    first, last = uids[0], uids[-1]
    if last - first == len(uids) - 1 and list(uids) == list(range(first, last + 1)):
        return f"{first}:{last}" if last != first else str(first)  # one run: the usual batch
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


def _completed(item: FetchedHeader, other: wire.FetchRecord | None) -> FetchedHeader:
    """`item` with what another response said of its UID, where it said nothing itself."""
    if other is None:
        return item
    return dataclasses.replace(
        item,
        internal_date_raw=item.internal_date_raw or other.internal_date,
        gm_msgid=item.gm_msgid if item.gm_msgid is not None else other.gm_msgid,
        gm_thrid=item.gm_thrid if item.gm_thrid is not None else other.gm_thrid,
    )


def _words(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text or type(exc).__name__


def _is_a_mail_session(session: ImapSession) -> MailSession:
    return session  # mypy proves here that ImapSession satisfies the Protocol the sync uses
