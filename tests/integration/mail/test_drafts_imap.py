"""The IMAP commands drafts use, against Dovecot: whole-message fetch, APPEND, find, delete."""

from __future__ import annotations

import pytest

from app.domain.folders import FolderInfo, pick_folder
from app.mail.imap import ImapAccount, ImapSession
from tests.factories import PROSPECT, REP, ImapUser, make_message, now_utc

pytestmark = pytest.mark.integration


def open_session(user: ImapUser) -> ImapSession:
    account = ImapAccount(
        host=user.server.host,
        port=user.server.port,
        security="plain",
        username=user.username,
        secret=user.password,
    )
    return ImapSession.open(account)


def test_fetch_append_find_and_delete(imap_user: ImapUser) -> None:
    server, name = imap_user.server, imap_user.username
    raw = make_message(
        from_=REP, to=[PROSPECT], subject="Proposal", date=now_utc(), message_id="o1@seller.example"
    )
    uid = server.append(name, "Sent", raw)
    with open_session(imap_user) as session:
        status = session.select("Sent")
        fetched = session.fetch_message("Sent", uid, uidvalidity=status.uidvalidity)
        assert fetched is not None
        assert fetched.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
        assert session.fetch_message("Sent", uid, uidvalidity=status.uidvalidity + 1) is None
        assert session.fetch_message("Sent", uid + 100) is None

        draft = raw.replace(b"o1@seller.example", b"d1@seller.example")
        uidvalidity, first = session.append("Drafts", draft, ("\\Draft", "\\Seen"))
        assert uidvalidity > 0 and first is not None
        _, second = session.append("Drafts", draft, ("\\Draft", "\\Seen"))
        assert session.find_message_id("Drafts", "<d1@seller.example>") == [first, second]
        assert session.find_message_id("Drafts", "<other@seller.example>") == []
        session.delete_messages("Drafts", [first])
        assert session.find_message_id("Drafts", "<d1@seller.example>") == [second]

    assert server.fetch_flags(name, "Sent")[uid] == set()  # never marked read
    assert server.fetch_flags(name, "Drafts") == {second: {"\\Draft", "\\Seen"}}


def test_delete_expunges_only_the_given_uids(imap_user: ImapUser) -> None:
    server, name = imap_user.server, imap_user.username
    mine = server.append(
        name,
        "Drafts",
        make_message(
            from_=REP, to=[PROSPECT], subject="a", date=now_utc(), message_id="a@seller.example"
        ),
    )
    theirs = server.append(
        name,
        "Drafts",
        make_message(
            from_=REP, to=[PROSPECT], subject="b", date=now_utc(), message_id="b@seller.example"
        ),
        flags=("\\Deleted",),  # the rep's own, flagged but not yet expunged by their client
    )
    with open_session(imap_user) as session:
        session.delete_messages("Drafts", [mine])
    assert server.folder_uids(name, "Drafts") == [theirs]


@pytest.mark.parametrize(
    ("folders", "expected"),
    [
        (
            [
                FolderInfo(name="INBOX", flags=frozenset()),
                FolderInfo(name="Entwürfe", flags=frozenset({"\\Drafts"})),
            ],
            "Entwürfe",
        ),
        ([FolderInfo(name="INBOX/Drafts", flags=frozenset())], "INBOX/Drafts"),
        ([FolderInfo(name="Drafts", flags=frozenset({"\\Noselect"}))], None),
        ([FolderInfo(name="Archive", flags=frozenset())], None),
    ],
)
def test_the_drafts_folder_by_special_use_else_by_name(
    folders: list[FolderInfo], expected: str | None
) -> None:
    assert pick_folder(folders, "\\Drafts", ("drafts",)) == expected
