"""Sending a follow-up over SMTP (a per-mailbox option): TLS or STARTTLS, verified
certificates, AUTH when a username is set. Blocking: call it through `asyncio.to_thread`."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from app.errors import MailAuthError, MailConnectionError, MailServerError, MailTLSError
from app.mail.imap import Security, check_security, tls_context


@dataclass(frozen=True, kw_only=True)
class SmtpAccount:
    host: str
    port: int
    security: Security
    username: str | None
    password: str | None

    def __repr__(self) -> str:  # never let the password reach a log line
        return f"SmtpAccount({self.username or '-'}@{self.host}:{self.port}, {self.security})"


def send_message(
    account: SmtpAccount,
    message: bytes,
    *,
    sender: str,
    recipients: Sequence[str],
    ca_file: Path | None = None,
    timeout: float = 30.0,
    allow_plaintext: bool = False,
) -> None:
    """Hand the message to the server for every recipient, or raise one of our mail errors
    with the server's words. A refusal of any recipient fails the whole send: a follow-up
    that reaches only half the people would be worse than none."""
    check_security(account.host, account.security, allow_plaintext=allow_plaintext)
    if not recipients:
        raise MailServerError("the draft has no recipients: nothing was sent")
    where = f"{account.host}:{account.port}"
    context = tls_context(ca_file)
    try:
        client: smtplib.SMTP
        if account.security == "tls":
            client = smtplib.SMTP_SSL(account.host, account.port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(account.host, account.port, timeout=timeout)
        with client:
            client.ehlo()
            if account.security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if account.username:
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
            f"{_words(exc)} — check the SMTP password"
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


def _words(exc: smtplib.SMTPException) -> str:
    code = getattr(exc, "smtp_code", None)
    text = getattr(exc, "smtp_error", b"")
    words = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    return f"{code} {words}".strip() if code else (words or str(exc))
