"""Test helpers around the private Dovecot of `app.demo.dovecot` (the launcher lives in the
app, which `radiosilence demo` uses too): `make_message` builds the messages tests put there."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime

from app.demo.dovecot import DovecotServer, dovecot_available, start_dovecot

__all__ = [
    "DovecotServer",
    "dovecot_available",
    "make_message",
    "start_dovecot",
]


def _as_utc(date: dt.datetime) -> dt.datetime:
    # Naive datetimes are taken as UTC so results never depend on the machine's TZ.
    return date.replace(tzinfo=dt.UTC) if date.tzinfo is None else date


# --------------------------------------------------------------------------- messages


def _angle(msg_id: str) -> str:
    msg_id = msg_id.strip()
    return msg_id if msg_id.startswith("<") else f"<{msg_id}>"


def make_message(
    *,
    from_: str,
    to: Sequence[str],
    subject: str,
    date: dt.datetime,
    message_id: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    cc: Sequence[str] = (),
    body: str = "Hello",
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """Build an RFC 5322 message (CRLF, non-ASCII headers RFC 2047-encoded).

    Message-IDs without angle brackets get them added; naive ``date`` is UTC.
    ``headers`` are added last and replace any header of the same name.
    """
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = from_
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = format_datetime(_as_utc(date))
    msg["Message-ID"] = _angle(message_id)
    if in_reply_to:
        msg["In-Reply-To"] = _angle(in_reply_to)
    if references:
        msg["References"] = " ".join(_angle(r) for r in references)
    for name, value in (headers or {}).items():
        del msg[name]
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes()
