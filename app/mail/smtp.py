"""Sending a follow-up over SMTP (a per-mailbox option): TLS or STARTTLS, verified
certificates, AUTH when a username is set, or AUTH XOAUTH2 with the access token of a
mailbox signed in with a provider. Blocking: run it on the mail thread pool
(`mail.blocking`)."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import MailAuthError, MailConnectionError, MailServerError, MailTLSError
from app.mail.imap import Security, check_security, connect_socket, tls_context, unreachable

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SmtpAccount:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None
    # A provider's access token: AUTH XOAUTH2 as `username` instead of a password.
    oauth2_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # never let the password reach a log line
        return f"SmtpAccount({self.username or '-'}@{self.host}:{self.port}, {self.security})"


class _PinnedSMTP(smtplib.SMTP):
    """smtplib.SMTP connecting to checked addresses; STARTTLS still checks the host name."""

    def __init__(self, host: str, port: int, *, addresses: Sequence[str], timeout: float):
        self._addresses = addresses
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect_socket(self._addresses, port, timeout)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: Sequence[str],
        timeout: float,
        context: ssl.SSLContext,
    ):
        self._addresses = addresses
        self._server_name = host  # for SNI and the certificate check, as SMTP_SSL does
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = connect_socket(self._addresses, port, timeout)
        return self.context.wrap_socket(sock, server_hostname=self._server_name)


def _connect(
    account: SmtpAccount,
    addresses: Sequence[str] | None,
    timeout: float,
    context: ssl.SSLContext,
) -> smtplib.SMTP:
    """Connected, greeted; no EHLO yet. `addresses` None: the host name (tests, tools)."""
    host, port = account.host, account.port
    if account.security == "tls":
        if addresses is None:
            return smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        return _PinnedSMTPSSL(host, port, addresses=addresses, timeout=timeout, context=context)
    if addresses is None:
        return smtplib.SMTP(host, port, timeout=timeout)
    return _PinnedSMTP(host, port, addresses=addresses, timeout=timeout)


def send_message(
    account: SmtpAccount,
    message: bytes,
    *,
    sender: str,
    recipients: Sequence[str],
    ca_file: Path | None = None,
    timeout: float = 30.0,
    allow_plaintext: bool = False,
    addresses: Sequence[str] | None = None,
) -> None:
    """Hand the message to the server for every recipient, or raise one of our mail errors
    with the server's words. A refusal of any recipient fails the whole send: a follow-up
    that reaches only half the people would be worse than none. `addresses`: the host's
    addresses as checked by the caller's guard, the only ones connected to. Until the server
    has greeted, every failure gets the same answer (see `imap.unreachable`)."""
    check_security(account.host, account.security, allow_plaintext=allow_plaintext)
    if not recipients:
        raise MailServerError("the draft has no recipients: nothing was sent")
    where = f"{account.host}:{account.port}"
    context = tls_context(ca_file)
    try:
        client = _connect(account, addresses, timeout, context)
    except (OSError, smtplib.SMTPException) as exc:
        log.info("smtp.connect_failed where=%s cause=%s", where, exc)
        raise MailConnectionError(unreachable("SMTP", where, account.security)) from None
    try:
        with client:
            client.ehlo()
            if account.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if account.oauth2_token is not None:
                _xoauth2(client, account.username or sender, account.oauth2_token)
            elif account.username:
                client.login(account.username, account.password or "")
            refused = client.sendmail(sender, list(recipients), message)
    except ssl.SSLCertVerificationError as exc:
        raise MailTLSError(
            f"the TLS certificate of the SMTP server {where} could not be verified "
            f"({exc.verify_message}): fix it or trust its CA with RADIOSILENCE_IMAP_CA_FILE"
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise MailAuthError(
            f"the SMTP server {where} refused the login for {account.username}: "
            f"{_words(exc)} — "
            + (
                "it did not take the mailbox's sign-in: reconnect the mailbox"
                if account.oauth2_token
                else "check the SMTP password"
            )
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise MailServerError(f"the SMTP server {where} does not support it: {exc}") from None
    except smtplib.SMTPRecipientsRefused as exc:
        who = ", ".join(sorted(exc.recipients))
        raise MailServerError(f"the SMTP server {where} refused {who}: nothing was sent") from None
    except (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError) as exc:
        raise MailConnectionError(
            f"could not send through {where}: {exc} — check host, port and security"
        ) from None
    except smtplib.SMTPException as exc:  # before OSError: SMTPException is one
        raise MailServerError(
            f"the SMTP server {where} refused the message: {_words(exc)}"
        ) from None
    except OSError as exc:  # refused, unreachable, timed out
        raise MailConnectionError(
            f"could not send through {where}: {exc} — check host, port and security"
        ) from None
    if refused:
        who = ", ".join(sorted(refused))
        raise MailServerError(f"the SMTP server {where} refused {who}; the others got it")


def _xoauth2(client: smtplib.SMTP, user: str, token: str) -> None:
    """AUTH XOAUTH2 (Google's and Microsoft's SASL for bearer tokens), when the server
    offers AUTH at all: a relay that takes mail without it is used as it is."""
    if not client.has_extn("auth"):
        return
    initial = f"user={user}\x01auth=Bearer {token}\x01\x01"

    def answer(challenge: bytes | None = None) -> str:
        # The first call gives the initial response; a 334 challenge after it carries the
        # server's error, answered empty so that it sends its final refusal.
        return initial if challenge is None else ""

    client.auth("XOAUTH2", answer, initial_response_ok=True)


def _words(exc: smtplib.SMTPException) -> str:
    code = getattr(exc, "smtp_code", None)
    text = getattr(exc, "smtp_error", b"")
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {words}".strip() if code else (words or str(exc))
