"""Factories for the tests: the messages, IMAP accounts, mailboxes and users that tests set up.

One place for building mail and accounts, so tests say what they need ("a quiet thread", "a
mailbox on this IMAP account") instead of repeating how it is made.
"""

from __future__ import annotations

import datetime as dt
import mailbox
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from app.services import accounts, mailboxes
from app.services.context import Context
from app.storage import mailboxes as mailbox_store
from app.storage import users as user_store
from tests.support.dovecot import DovecotServer
from tests.support.processes import run_cli

REP = "rep@seller.example"
PROSPECT = "anna@buyer.example"
COLLEAGUE = "colleague@seller.example"


# --------------------------------------------------------------------------- messages


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


# ---------------------------------------------------------------- IMAP accounts and mailboxes


@dataclass
class ImapUser:
    server: DovecotServer
    username: str
    password: str

    def mailbox_body(self, **overrides: object) -> dict[str, object]:
        """The POST /api/v1/mailboxes body for this user on the test server."""
        body: dict[str, object] = {
            "name": "Work",
            "imap": {
                "host": self.server.host,
                "port": self.server.port,
                "security": "plain",
                "username": self.username,
                "password": self.password,
            },
            "addresses": [REP],
            "timezone": "UTC",
            "holiday_country": None,
        }
        body.update(overrides)
        return body

    def mailbox_input(self, name: str = "Work") -> mailboxes.MailboxInput:
        """The same mailbox, as the services take it."""
        return mailboxes.MailboxInput(
            name=name,
            host=self.server.host,
            port=self.server.port,
            security="plain",
            username=self.username,
            secret=self.password,
            auth_method="password",
            addresses=[REP],
            timezone="UTC",
            holiday_country=None,
        )

    @classmethod
    def new(cls, dovecot: DovecotServer) -> ImapUser:
        """A fresh IMAP account on the test server."""
        username = f"rep-{uuid.uuid4().hex[:10]}@seller.example"
        password = "s3cret-" + uuid.uuid4().hex[:8]
        dovecot.add_user(username, password)
        return cls(server=dovecot, username=username, password=password)


@dataclass
class Scenario:
    """Message-IDs of the threads `populate` wrote, by the state they must end in."""

    quiet: str
    replied: str
    awaiting: str
    internal: str
    paused: str


def populate(user: ImapUser, now: datetime) -> Scenario:
    """A small mailbox of five conversations across INBOX, Sent, a custom folder and Junk."""
    s, u = user.server, user.username
    old = now - timedelta(days=10)

    def put(folder: str, **kw: object) -> None:
        date = kw["date"]
        assert isinstance(date, datetime)
        s.append(u, folder, make_message(**kw), date=date)  # type: ignore[arg-type]

    put(
        "Sent",
        from_=REP,
        to=[PROSPECT],
        subject="Proposal for Buyer Inc",
        date=old,
        message_id="q1@seller.example",
    )
    # A reply to the quiet thread sits in Junk: Junk is not read, so the thread stays quiet.
    put(
        "Junk",
        from_=PROSPECT,
        to=[REP],
        subject="Re: Proposal for Buyer Inc",
        date=old + timedelta(days=1),
        message_id="junk1@buyer.example",
        in_reply_to="q1@seller.example",
        references=["q1@seller.example"],
    )
    # The reply was filed by a mail rule into a custom folder, and arrived before Sent is read.
    put(
        "Clients/Acme",
        from_=PROSPECT,
        to=[REP],
        subject="Re: Pricing — Müller GmbH",
        date=old + timedelta(days=2),
        message_id="r2@buyer.example",
        in_reply_to="r1@seller.example",
        references=["r1@seller.example"],
        body="Sounds good, let's talk Tuesday.",
    )
    put(
        "Sent",
        from_=REP,
        to=[PROSPECT],
        subject="Pricing — Müller GmbH",
        date=old,
        message_id="r1@seller.example",
    )
    put(
        "Sent",
        from_=REP,
        to=[PROSPECT],
        subject="Next steps",
        date=now - timedelta(hours=1),
        message_id="a1@seller.example",
    )
    put(
        "INBOX",
        from_=COLLEAGUE,
        to=[REP],
        subject="Lunch?",
        date=old,
        message_id="i1@seller.example",
    )
    put(
        "Sent",
        from_=REP,
        to=[PROSPECT],
        subject="Contract draft",
        date=old,
        message_id="p1@seller.example",
    )
    put(
        "INBOX",
        from_=PROSPECT,
        to=[REP],
        subject="Automatic reply: Contract draft",
        date=now - timedelta(hours=2),
        message_id="p2@buyer.example",
        in_reply_to="p1@seller.example",
        headers={"Auto-Submitted": "auto-replied"},
    )
    return Scenario(
        quiet="<q1@seller.example>",
        replied="<r1@seller.example>",
        awaiting="<a1@seller.example>",
        internal="<i1@seller.example>",
        paused="<p1@seller.example>",
    )


def answer_the_proposal(user: ImapUser, body: str, message_id: str = "late@buyer.example") -> None:
    """The prospect answers the quiet thread `populate` wrote, now, into INBOX."""
    user.server.append(
        user.username,
        "INBOX",
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Proposal for Buyer Inc",
            date=now_utc(),
            message_id=message_id,
            in_reply_to="q1@seller.example",
            references=["q1@seller.example"],
            body=body,
        ),
        date=now_utc(),
    )


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def connect(ctx: Context, user: ImapUser) -> tuple[int, int]:
    """A Radio Silence user owning a mailbox on `user`'s IMAP account: (user id, mailbox id)."""
    user_id = await accounts.create_user(ctx, email="owner@seller.example", password="pw-123456789")
    return user_id, await mailboxes.create_mailbox(ctx, user_id=user_id, data=user.mailbox_input())


# ---------------------------------------------------------------- users (through the CLI)


def make_user(email: str, env: dict[str, str], cwd: Path) -> str:
    made = run_cli(
        "user",
        "create",
        "--email",
        email,
        "--password-stdin",
        env=env,
        cwd=cwd,
        stdin="a-long-password\n",
    )
    assert made.returncode == 0, made.stderr
    token = run_cli("token", "create", "--email", email, "--name", "e2e", env=env, cwd=cwd)
    assert token.returncode == 0, token.stderr
    return token.stdout.strip().splitlines()[-1]


# ---------------------------------------------------------------- rows written straight to storage


async def make_mailbox(conn: AsyncConnection, ctx: Context) -> tuple[int, int]:
    user_id = await user_store.create_user(
        conn, email="u@seller.example", password_hash="x", is_admin=False
    )
    mailbox_id = await mailbox_store.create_mailbox(
        conn,
        {
            "user_id": user_id,
            "name": "Work",
            "imap_host": "127.0.0.1",
            "imap_port": 143,
            "imap_security": "plain",
            "imap_username": "u",
            "auth_method": "password",
            "secret_enc": ctx.box.encrypt("correct-horse-battery"),
            "addresses": ["rep@seller.example"],
            "timezone": "UTC",
            "holiday_country": None,
            "holiday_subdiv": None,
            "rules": {},
        },
        now=datetime.now(UTC),
    )
    return user_id, mailbox_id


# ---------------------------------------------------------------- mail exports (mbox, Maildir)

PROPOSAL_BODY = "Hi Anna,\n\nattached is our proposal for the 40 seats.\n\nBest,\nRita"


def export(kind: str, folder: Path) -> Path:
    """An export with one quiet thread (the rep's proposal, ten days unanswered), one
    answered thread and an internal e-mail: an mbox file, or a Maildir with a Sent folder."""
    old = now_utc() - timedelta(days=10)
    sent = [
        make_message(
            from_=f"Rita Rep <{REP}>",
            to=[f"Anna Schmidt <{PROSPECT}>"],
            subject="Proposal for Buyer Inc",
            date=old,
            message_id="q1@seller.example",
            body=PROPOSAL_BODY,
        ),
        make_message(
            from_=REP, to=[PROSPECT], subject="Pricing", date=old, message_id="r1@seller.example"
        ),
    ]
    inbox = [
        make_message(
            from_=PROSPECT,
            to=[REP],
            subject="Re: Pricing",
            date=old + timedelta(days=1),
            message_id="r2@buyer.example",
            references=["r1@seller.example"],
            body="Thanks, that works for us. Let's talk on Monday.",
        ),
        make_message(
            from_=COLLEAGUE, to=[REP], subject="Lunch", date=old, message_id="i1@seller.example"
        ),
    ]
    if kind == "mbox":
        path = folder / "export.mbox"
        box = mailbox.mbox(path, create=True)
        for raw in sent + inbox:
            box.add(raw)
        box.close()
        return path
    path = folder / "export"
    root = mailbox.Maildir(path, create=True)
    for raw in inbox:
        root.add(raw)
    sent_folder = root.add_folder("Sent")
    for raw in sent:
        sent_folder.add(raw)
    return path
