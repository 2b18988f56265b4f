"""Integration fixtures: a real Dovecot for the whole session, a fresh IMAP user per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.services import accounts, mailboxes
from app.services.context import Context
from tests.conftest import IN_CI
from tests.support.dovecot import DovecotServer, dovecot_available, make_message, start_dovecot

REP = "rep@seller.example"
PROSPECT = "anna@buyer.example"
COLLEAGUE = "colleague@seller.example"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    if not dovecot_available():
        message = "dovecot is not installed: run scripts/install-test-deps.sh (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = start_dovecot()
    yield server
    server.close()


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


@pytest.fixture
def imap_user(dovecot: DovecotServer) -> ImapUser:
    return ImapUser.new(dovecot)


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
