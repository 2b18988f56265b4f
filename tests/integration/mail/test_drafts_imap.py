"""The IMAP commands drafts use, against Dovecot: whole-message fetch, APPEND, find, delete."""

from __future__ import annotations

import pytest

from app.domain.folders import FolderInfo, pick_folder
from app.errors import MailAnswerTooLarge
from app.mail.imap import ImapAccount, ImapSession
from tests.factories import PROSPECT, REP, ImapUser, make_message, now_utc

pytestmark = pytest.mark.integration
MAX_BYTES = 1024 * 1024


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
        fetched = session.fetch_message(
            "Sent", uid, uidvalidity=status.uidvalidity, max_bytes=MAX_BYTES
        )
        assert fetched is not None
        assert fetched.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")
        assert (
            session.fetch_message(
                "Sent", uid, uidvalidity=status.uidvalidity + 1, max_bytes=MAX_BYTES
            )
            is None
        )
        assert session.fetch_message("Sent", uid + 100, max_bytes=MAX_BYTES) is None

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


def test_an_e_mail_over_the_bound_is_not_read_and_the_session_goes_on(
    imap_user: ImapUser,
) -> None:
    server, name = imap_user.server, imap_user.username
    large = make_message(
        from_=REP,
        to=[PROSPECT],
        subject="Catalogue",
        date=now_utc(),
        message_id="big@seller.example",
        body="The full catalogue follows.\n" + "x" * 76 * 4000,
    )
    small = make_message(
        from_=REP, to=[PROSPECT], subject="Hi", date=now_utc(), message_id="s@seller.example"
    )
    big_uid = server.append(name, "Sent", large)
    small_uid = server.append(name, "Sent", small)
    with open_session(imap_user) as session:
        with pytest.raises(MailAnswerTooLarge) as refused:
            session.fetch_message("Sent", big_uid, max_bytes=100_000)
        assert f"UID {big_uid} in Sent" in str(refused.value)
        assert "more than the 100,000 this service reads" in str(refused.value)
        # Refused by its size before any of it was sent: the same session reads on.
        assert session.fetch_message("Sent", small_uid, max_bytes=100_000) is not None
        whole = session.fetch_message("Sent", big_uid, max_bytes=len(large) + 1000)
        assert whole is not None and whole.replace(b"\r\n", b"\n") == large.replace(b"\r\n", b"\n")
    assert server.fetch_flags(name, "Sent") == {big_uid: set(), small_uid: set()}


def test_e_mails_of_the_folder_already_open_are_read_without_selecting_it_again(
    imap_user: ImapUser,
) -> None:
    """A draft pass reads the rep's e-mails one after another, nearly all from Sent: each
    SELECT would cost a round trip and, on Maildir, a scan of the folder's files."""
    server, name = imap_user.server, imap_user.username
    uids = [
        server.append(
            name,
            "Sent",
            make_message(
                from_=REP,
                to=[PROSPECT],
                subject=f"Offer {n}",
                date=now_utc(),
                message_id=f"o{n}@seller.example",
            ),
        )
        for n in range(3)
    ]
    with open_session(imap_user) as session:
        status = session.select("Sent")
        trips = session.round_trips
        for uid in uids:  # the size, then the message: two round trips each
            fetched = session.fetch_message(
                "Sent", uid, uidvalidity=status.uidvalidity, max_bytes=MAX_BYTES
            )
            assert fetched is not None and b"Offer" in fetched
        assert session.round_trips - trips == 2 * len(uids)
        session.select("INBOX")  # another folder open: Sent is selected again first
        trips = session.round_trips
        assert session.fetch_message("Sent", uids[0], max_bytes=MAX_BYTES) is not None
        assert session.round_trips - trips == 3
        # A renumbered folder is still told apart: the UIDVALIDITY of the open one is kept.
        stale = status.uidvalidity + 1
        assert (
            session.fetch_message("Sent", uids[0], uidvalidity=stale, max_bytes=MAX_BYTES) is None
        )


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
