"""The only importer of imapclient: connect, log in, list, select, fetch headers.

imapclient is synchronous and not thread-safe: one session per thread, driven from asyncio
through `asyncio.to_thread`. Every library error leaves this module as one of ours.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import socket
import ssl
from collections.abc import Iterator, Sequence
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
FETCH_BATCH = 500  # UIDs per FETCH command; servers cap command length (and Yahoo at 5,000)
_HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(FETCH_HEADER_FIELDS) + ")]"
_HEADER_KEY = ("BODY[HEADER.FIELDS (" + " ".join(FETCH_HEADER_FIELDS) + ")]").encode()


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
    internal_date: datetime | None
    header: bytes


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
        self.capabilities: frozenset[str] = frozenset(
            c.decode().upper() if isinstance(c, bytes) else str(c).upper()
            for c in client.capabilities()
        )

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

    @property
    def is_gmail(self) -> bool:
        return "X-GM-EXT-1" in self.capabilities

    @property
    def has_condstore(self) -> bool:
        return "CONDSTORE" in self.capabilities

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

    def fetch_headers(self, uids: Sequence[int]) -> Iterator[FetchedHeader]:
        """The header fields the decisions need, with BODY.PEEK so nothing is marked read."""
        for start in range(0, len(uids), FETCH_BATCH):
            chunk = uids[start : start + FETCH_BATCH]
            with _errors("UID FETCH"):
                response = self._client.fetch(chunk, ["INTERNALDATE", _HEADER_ITEM])
            for uid in chunk:
                data = response.get(uid)
                if data is None:  # expunged meanwhile
                    continue
                internal = data.get(b"INTERNALDATE")
                if isinstance(internal, datetime):
                    internal = (
                        internal.replace(tzinfo=UTC) if internal.tzinfo is None else internal
                    ).astimezone(UTC)
                yield FetchedHeader(
                    uid=uid, internal_date=internal, header=data.get(_HEADER_KEY, b"")
                )

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


def _words(exc: BaseException) -> str:
    text = str(exc)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[2:-1]
    return text or type(exc).__name__
