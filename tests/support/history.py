"""A sales mailbox with the mail whose reading order matters, and what a sync made of it.

Shared by the crash-consistency tests: answers filed before the rep's own e-mail is read, a
bounce that names the returned e-mail only in its body, an out-of-office note with a return
date in its text, a decline, a quote-only "reply", and many quiet threads."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import format_datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.storage.tables import events, mailboxes, messages, threads
from tests.factories import make_message
from tests.support.dovecot import DovecotServer

REP = "rep@seller.example"


def prospect(i: int) -> str:
    return f"buyer{i}@client{i}.example"


def dsn(rep: str, to: str, original_id: str, bounce_id: str, when: datetime) -> bytes:
    """A delivery status notification naming the returned e-mail only in its body."""
    return (
        "From: MAILER-DAEMON@mx.client.example (Mail Delivery System)\r\n"
        f"To: {rep}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Date: {format_datetime(when)}\r\nMessage-ID: <{bounce_id}>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.client.example"
        f"\r\n\r\nFinal-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {rep}\r\nTo: {to}\r\nSubject: Intro\r\nMessage-ID: <{original_id}>\r\n"
        "\r\n--B--\r\n"
    ).encode()


@dataclass
class History:
    """The threads written, by the Message-ID of the rep's first e-mail: the state a sync
    must find once it has read everything."""

    expected: dict[str, str] = field(default_factory=dict)
    quiet: list[str] = field(default_factory=list)  # newest rep's e-mail first


def write_history(server: DovecotServer, user: str, now: datetime, *, quiet: int) -> History:
    """The answers sit in INBOX, the e-mails they answer in Sent: whichever folder is read
    first, a decision taken between the two (or before the bodies are read) is wrong."""
    old = now - timedelta(days=12)
    history = History()

    def sent(key: str, i: int, at: datetime, subject: str) -> None:
        message = make_message(
            from_=REP, to=[prospect(i)], subject=subject, date=at, message_id=key
        )
        server.append(user, "Sent", message, date=at)

    def inbox(i: int, key: str, answers: str, subject: str, at: datetime, **kw: object) -> None:
        message = make_message(
            from_=prospect(i),
            to=[REP],
            subject=subject,
            date=at,
            message_id=key,
            in_reply_to=answers,
            references=[answers],
            **kw,  # type: ignore[arg-type]
        )
        server.append(user, "INBOX", message, date=at)

    for i in range(quiet):  # quiet, the newest first in `history.quiet`
        key = f"quiet{i}@seller.example"
        sent(key, i, old + timedelta(hours=quiet - i), f"Proposal {i}")
        history.expected[f"<{key}>"] = "quiet"
        history.quiet.append(f"<{key}>")
    base = 1000
    for j in range(4):  # answered
        i = base + j
        sent(f"answered{j}@seller.example", i, old, f"Pricing {j}")
        inbox(
            i,
            f"yes{j}@client.example",
            f"answered{j}@seller.example",
            f"Re: Pricing {j}",
            old + timedelta(days=1),
            body="Sounds good, let's talk Tuesday.",
        )
        history.expected[f"<answered{j}@seller.example>"] = "replied"
    for j in range(3):  # bounced: the DSN names the original in its body only
        i = base + 10 + j
        key = f"bounced{j}@seller.example"
        sent(key, i, old, f"Intro {j}")
        server.append(
            user,
            "INBOX",
            dsn(REP, prospect(i), key, f"dsn{j}@mx.client.example", old + timedelta(minutes=5)),
            date=old,
        )
        history.expected[f"<{key}>"] = "bounced"
    back = (now + timedelta(days=20)).date()
    for j in range(2):  # away until a date written in the text
        i = base + 20 + j
        key = f"away{j}@seller.example"
        sent(key, i, old, f"Contract {j}")
        inbox(
            i,
            f"ooo{j}@client.example",
            key,
            f"Automatic reply: Contract {j}",
            now - timedelta(hours=1),
            headers={"Auto-Submitted": "auto-replied"},
            body=f"I am out of the office until {back.strftime('%d %B %Y')}.",
        )
        history.expected[f"<{key}>"] = "paused"
    for j in range(2):  # a clear no
        i = base + 30 + j
        key = f"declined{j}@seller.example"
        sent(key, i, old, f"Offer {j}")
        inbox(
            i,
            f"no{j}@client.example",
            key,
            f"Re: Offer {j}",
            old + timedelta(days=1),
            body="Thanks, but we are not interested at this time.\n",
        )
        history.expected[f"<{key}>"] = "closed"
    # A no that lost its threading headers: it finds its thread by subject once every folder
    # is read, and only its body (read after that) says it declines.
    i = base + 40
    sent("orphaned@seller.example", i, old, "Integration plan for Client40")
    no = make_message(
        from_=prospect(i),
        to=[REP],
        subject="Re: Integration plan for Client40",
        date=now - timedelta(hours=2),  # recent: old mail without headers stops being matched
        message_id="no-headers@client.example",
        body="Thanks, but we are not interested at this time.\n",
    )
    server.append(user, "INBOX", no, date=now - timedelta(hours=2))
    history.expected["<orphaned@seller.example>"] = "closed"
    return history


def answer(server: DovecotServer, user: str, history: History, count: int, now: datetime) -> None:
    """New mail: the prospects of the `count` oldest quiet threads answer now."""
    for root in history.quiet[-count:]:
        key = root.strip("<>")
        i = int(key.removeprefix("quiet").split("@")[0])
        message = make_message(
            from_=prospect(i),
            to=[REP],
            subject=f"Re: Proposal {i}",
            date=now,
            message_id=f"late{i}@client.example",
            in_reply_to=key,
            references=[key],
            body="Yes, let's go ahead.",
        )
        server.append(user, "INBOX", message, date=now)
        history.expected[root] = "replied"
        history.quiet.remove(root)


@dataclass(frozen=True)
class Outcome:
    """What a mailbox's sync made of it, with ids and timestamps left out: each thread by
    the Message-ID of its first e-mail, its state; every event by its type and thread."""

    states: dict[str, str]
    events: Counter[tuple[str, str]]
    baseline: bool


async def outcome(engine: AsyncEngine, mailbox_id: int) -> Outcome:
    """Each part in one statement, so that a sync committing meanwhile cannot show a thread
    without its messages (a statement reads one snapshot; two in a row may not)."""

    def root(thread_id: Any) -> Any:
        return (
            select(messages.c.message_key)
            .where(messages.c.thread_id == thread_id)
            .order_by(messages.c.date, messages.c.id)
            .limit(1)
            .scalar_subquery()
        )

    async with engine.connect() as conn:
        states = {
            key or f"(thread {thread_id} without messages)": state
            for thread_id, state, key in await conn.execute(
                select(threads.c.id, threads.c.state, root(threads.c.id)).where(
                    threads.c.mailbox_id == mailbox_id
                )
            )
        }
        logged: Counter[tuple[str, str]] = Counter(
            (kind, key or "")
            for kind, key in await conn.execute(
                select(events.c.type, root(events.c.thread_id)).where(
                    events.c.mailbox_id == mailbox_id
                )
            )
        )
        baseline = await conn.scalar(
            select(mailboxes.c.baseline).where(mailboxes.c.id == mailbox_id)
        )
    return Outcome(states=states, events=logged, baseline=bool(baseline))


def announcements(history: History) -> Counter[tuple[str, str]]:
    """The events of a first sync of `history`: one `thread.quiet` per quiet thread."""
    return Counter(("thread.quiet", root) for root in history.quiet)
