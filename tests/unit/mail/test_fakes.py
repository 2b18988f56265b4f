"""The fake IMAP server keeps to the MailSession Protocol and to the semantics sync relies on."""

from __future__ import annotations

import inspect
from datetime import UTC, date, datetime

import pytest

from app.errors import MailConnectionError, MailServerError
from app.mail.answers import Refused
from app.mail.imap import ImapSession
from app.mail.session import MailSession
from tests.fakes import FakeImapServer, FakeSession

RAW = (
    b"Message-ID: <a@b.example>\r\n"
    b"Subject: a long\r\n  folded subject\r\n"
    b"X-Spam-Score: 3\r\n"
    b"From: a@b.example\r\n"
    b"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
    b"\r\n"
    b"Hello there.\r\n"
)


def members(cls: type) -> dict[str, inspect.Signature | None]:
    """Public members of a class; a method's signature, None for a property or attribute."""
    out: dict[str, inspect.Signature | None] = {}
    for name, value in inspect.getmembers(cls):
        if name.startswith("_"):
            continue
        out[name] = inspect.signature(value) if inspect.isfunction(value) else None
    return out


@pytest.mark.parametrize("cls", [FakeSession, ImapSession])
def test_the_sessions_have_every_member_of_the_protocol(cls: type) -> None:
    """mypy proves it for ImapSession; tests/ are not type-checked, so the fake is checked
    here, by name and parameters."""
    protocol, actual = members(MailSession), members(cls)
    instance_attributes = {"capabilities"}  # set in __init__ on both
    for name, signature in protocol.items():
        assert name in actual or name in instance_attributes, f"{cls.__name__} lacks {name}"
        if signature is not None:
            theirs = actual[name]
            assert theirs is not None, f"{cls.__name__}.{name} is not a method"
            assert list(theirs.parameters) == list(signature.parameters), name
            kinds = [p.kind for p in theirs.parameters.values()]
            assert kinds == [p.kind for p in signature.parameters.values()], name


def test_the_header_pass_gets_the_asked_for_fields_only() -> None:
    server = FakeImapServer()
    server.add_folder("INBOX")
    uid = server.deliver("INBOX", RAW)
    session = server.connect()
    session.select("INBOX")
    [header] = session.fetch_headers([uid, uid + 5])  # a UID not there is left out
    assert header.header == (
        b"Message-ID: <a@b.example>\r\n"
        b"Subject: a long\r\n  folded subject\r\n"
        b"From: a@b.example\r\n"
        b"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
        b"\r\n"
    )
    assert session.fetch_text_prefixes([uid], size=5) == {uid: b"Hello"}
    assert session.fetch_internal_dates([uid]) == {uid: datetime(2026, 3, 2, 9, tzinfo=UTC)}


def test_status_search_and_numbering() -> None:
    server = FakeImapServer()
    inbox = server.add_folder("INBOX")
    for day in (1, 2, 3):
        server.deliver("INBOX", RAW, arrived=datetime(2026, 3, day, tzinfo=UTC))
    server.expunge("INBOX", 2)
    session = server.connect()
    status = session.status("INBOX")
    assert (status.uidnext, status.exists) == (4, 2)
    assert status.highest_modseq == inbox.modseq
    with pytest.raises(MailServerError, match="No mailbox selected"):
        session.search_uids(min_uid=1, since=None)
    session.select("INBOX")
    assert list(session.search_uids(min_uid=1, since=None)) == [1, 3]
    assert list(session.search_uids(min_uid=2, since=date(2026, 3, 1))) == [3]
    assert list(session.search_uids(min_uid=1, since=date(2026, 3, 2))) == [3]
    old = inbox.uidvalidity
    server.renumber("INBOX")
    assert list(session.search_uids(min_uid=1, since=None)) == [1, 2]
    assert session.status("INBOX").uidvalidity != old
    assert FakeImapServer(capabilities=["IMAP4REV1"]).connect().has_idle is False


def test_a_fault_fires_once_and_a_drop_kills_the_session() -> None:
    server = FakeImapServer()
    server.add_folder("INBOX")
    server.fail("status", "no")
    server.fail("list_folders", "bad", after=1)
    session = server.connect()
    with pytest.raises(MailServerError, match="refused STATUS: NO") as refused:
        session.status("INBOX")
    assert not isinstance(refused.value, MailConnectionError)
    session.status("INBOX")  # refused once: the session goes on
    session.list_folders()
    with pytest.raises(Refused, match="BAD"):
        session.list_folders()
    server.fail("select", "drop")
    with pytest.raises(MailConnectionError):
        session.select("INBOX")
    with pytest.raises(MailConnectionError):  # the socket is gone for good
        session.status("INBOX")
    assert server.connect().select("INBOX").uidnext == 1  # a new connection works


def test_idle_reports_what_arrived_since_the_last_idle() -> None:
    server = FakeImapServer()
    server.add_folder("INBOX")
    session = server.connect()
    assert not session.idle_until_news("INBOX", renew_after=60, stop=lambda: False)
    server.deliver("INBOX", RAW)
    assert session.idle_until_news("INBOX", renew_after=60, stop=lambda: False)
    assert not session.idle_until_news("INBOX", renew_after=60, stop=lambda: False)
