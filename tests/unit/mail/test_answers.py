"""Long answers (SEARCH, LIST, FETCH) read within this client's own bounds, over scripted bytes.

imaplib refuses any line over 1,000,000 bytes; these answers are read here instead, and when
one of our bounds is hit the error says it is ours, not a refusal by the server.
"""

from __future__ import annotations

import imaplib
import io
from datetime import date

import pytest

from app.errors import MailAnswerTooLarge, MailConnectionError, MailServerError
from app.mail import answers, imap
from app.mail.answers import read_list, read_search
from app.mail.imap import _errors
from tests.support.scripted_imap import session_over

TAG = b"T1"


def reader(data: bytes) -> io.BufferedReader:
    return io.BufferedReader(io.BytesIO(data))


def test_a_search_answer_longer_than_imaplib_s_line_limit_is_read_whole() -> None:
    uids = list(range(1_000_000_000, 1_000_300_000, 3))  # 100,000 UIDs: a 1.1 MB line
    line = b"* SEARCH " + b" ".join(b"%d" % u for u in uids) + b"\r\n"
    assert len(line) > imaplib._MAXLINE
    source = reader(line + b"T1 OK Search completed.\r\nNEXT")

    assert list(read_search(source, TAG, "UID SEARCH", max_uids=200_000)) == uids
    assert source.read() == b"NEXT"  # nothing after the tagged completion was taken


@pytest.mark.parametrize("cut", [-2, -1, 0, 1, 2])
def test_a_uid_or_the_line_end_split_between_two_reads(cut: int) -> None:
    """The line's CR lands `cut` bytes from the end of the first read: no UID lost."""
    head = b"* SEARCH"
    before_cr = answers.PIECE - 1 + cut  # the CR's index in the line
    full, rest = divmod(before_cr - len(head), 11)
    uids = list(range(1_000_000_000, 1_000_000_000 + full))
    line = head + b"".join(b" %d" % u for u in uids)
    if rest > 1:  # one shorter UID fills the line up to the CR
        uids.append(int(b"7" * (rest - 1)))
    line += b" " + b"7" * (rest - 1) if rest else b""
    line += b"\r\n"
    assert line.index(b"\r") == before_cr
    found = list(read_search(reader(line + b"T1 OK\r\n"), TAG, "UID SEARCH", max_uids=10_000))
    assert found == uids


def test_esearch_ranges_are_expanded_and_other_items_ignored() -> None:
    answer = b'* ESEARCH (TAG "T1") UID COUNT 9 MIN 1 ALL 1:3,7,12:10,4294967295\r\nT1 OK done\r\n'
    found = list(read_search(reader(answer), TAG, "UID SEARCH", max_uids=100))
    assert found == [1, 2, 3, 7, 10, 11, 12, 4294967295]
    empty = b'* ESEARCH (TAG "T1") UID\r\nT1 OK done\r\n'
    assert list(read_search(reader(empty), TAG, "UID SEARCH", max_uids=100)) == []


def test_a_long_esearch_answer_split_across_pieces() -> None:
    parts = [b"%d:%d" % (n, n + 1) for n in range(1, 400_000, 4)]  # ~1.4 MB of ranges
    answer = b'* ESEARCH (TAG "T1") UID ALL ' + b",".join(parts) + b"\r\nT1 OK done\r\n"
    found = list(read_search(reader(answer), TAG, "UID SEARCH", max_uids=1_000_000))
    assert len(found) == 200_000
    assert found[:4] == [1, 2, 5, 6] and found[-2:] == [399_997, 399_998]


def test_other_untagged_answers_and_their_literals_are_skipped() -> None:
    answer = (
        b"* 7 EXISTS\r\n"
        b"* 3 FETCH (UID 9 FLAGS (\\Seen))\r\n"
        b"* 4 FETCH (UID 10 BODY[HEADER] {22}\r\n* SEARCH 666\r\nT1 NO\r\n)\r\n"
        b"* SEARCH 5 8 13 (MODSEQ 917)\r\n"
        b"T2 OK another tag is not ours\r\n"
        b"T1 OK done\r\n"
    )
    assert list(read_search(reader(answer), TAG, "UID SEARCH", max_uids=10)) == [5, 8, 13]


def test_more_uids_than_the_bound_is_our_limit_said_so() -> None:
    line = b"* SEARCH " + b" ".join(b"%d" % u for u in range(1, 1002)) + b"\r\nT1 OK\r\n"
    with pytest.raises(MailAnswerTooLarge, match="held more than 1,000 UIDs") as caught:
        read_search(reader(line), TAG, "UID SEARCH", max_uids=1000)
    assert "did not refuse" in caught.value.message and "refused" not in caught.value.message


def test_a_huge_esearch_range_is_refused_before_it_is_expanded() -> None:
    answer = b'* ESEARCH (TAG "T1") UID ALL 1:4294967295\r\nT1 OK\r\n'
    with pytest.raises(MailAnswerTooLarge, match="held more than 5,000 UIDs"):
        read_search(reader(answer), TAG, "UID SEARCH", max_uids=5000)


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (b"T1 NO [LIMIT] too many results\r\n", MailServerError, "the server refused UID SEARCH"),
        (b"* SEARCH 1 2\r\n* BYE shutting down\r\n", MailConnectionError, "closed the connection"),
        (b"* SEARCH 1 2 3", MailConnectionError, "closed the connection"),
        (b"* SEARCH 1 2 abc:def 3\r\nT1 OK\r\n", MailServerError, "could not be read"),
        (b"* SEARCH 1 " + b"9" * 100_000 + b"\r\nT1 OK\r\n", MailServerError, "could not be read"),
        # UIDs are 32-bit and never 0 (RFC 9051): anything else is not a UID we could keep.
        (b"* SEARCH 1 4294967296\r\nT1 OK\r\n", MailServerError, "UID out of range"),
        (b"* SEARCH 0 2\r\nT1 OK\r\n", MailServerError, "UID out of range"),
        (
            b'* ESEARCH (TAG "T1") UID ALL 5:99999999999\r\nT1 OK\r\n',
            MailServerError,
            "out of range",
        ),
    ],
)
def test_refusals_goodbyes_and_junk(answer: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        read_search(reader(answer), TAG, "UID SEARCH", max_uids=10)


# Through ImapSession: the commands sent, ESEARCH or slices, the session after an error.


def test_with_esearch_one_command_returns_the_window() -> None:
    session, sent = session_over(b'* ESEARCH (TAG "T1") UID ALL 3:5,9\r\nT1 OK done\r\n')
    session.capabilities = frozenset({"IMAP4REV1", "ESEARCH"})
    found = list(session.search_uids(min_uid=4, since=date(2026, 11, 2), exists=900_000))
    # 3 is below min_uid: `UID 4:*` includes the highest message whatever its UID; not here.
    assert found == [4, 5, 9]
    assert sent.sent == [b"T1 UID SEARCH RETURN (ALL) UID 4:* SINCE 02-Nov-2026\r\n"]


def test_without_esearch_a_large_folder_is_searched_newest_slice_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imap, "SEARCH_SPAN", 10)
    replies = (
        b"* SEARCH 121 122 125\r\nT1 OK\r\n"  # messages 16:*
        b"* SEARCH 104 110 112 121\r\nT2 OK\r\n"  # 6:15, and 121 again after an expunge
        b"* SEARCH 2 3\r\nT3 OK\r\n"  # 1:5
    )
    session, sent = session_over(replies)
    assert list(session.search_uids(min_uid=1, since=date(2026, 11, 20), exists=25)) == [
        2,
        3,
        104,
        110,
        112,
        121,
        122,
        125,
    ]
    assert sent.sent == [
        b"T1 UID SEARCH 16:* UID 1:* SINCE 20-Nov-2026\r\n",
        b"T2 UID SEARCH 6:15 UID 1:* SINCE 20-Nov-2026\r\n",
        b"T3 UID SEARCH 1:5 UID 1:* SINCE 20-Nov-2026\r\n",
    ]
    assert session.round_trips == 3 and sent.tagged_commands == {}


def test_new_mail_in_a_large_folder_without_esearch_stops_at_the_first_slice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(imap, "SEARCH_SPAN", 10)
    session, sent = session_over(b"* SEARCH 301 302\r\nT1 OK\r\n")
    assert list(session.search_uids(min_uid=301, since=None, exists=1000)) == [301, 302]
    assert sent.sent == [b"T1 UID SEARCH 991:* UID 301:*\r\n"]


def test_a_refused_search_leaves_the_session_usable_a_bound_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, sent = session_over(b"T1 BAD Error in IMAP command\r\n* SEARCH 7\r\nT2 OK\r\n")
    with pytest.raises(MailServerError, match="the server refused UID SEARCH: BAD"):
        session.search_uids(min_uid=1, since=None)
    assert list(session.search_uids(min_uid=1, since=None)) == [7]

    monkeypatch.setattr(imap, "SEARCH_UID_LIMIT", 2)
    session, sent = session_over(b"* SEARCH 7 8 9\r\nT1 OK\r\n")
    with pytest.raises(MailAnswerTooLarge, match="held more than 2 UIDs"):
        session.search_uids(min_uid=1, since=None)
    assert sent.file.closed and sent.tagged_commands == {}


# LIST: one line per folder, each bounded, and the number of folders.


def test_many_folders_and_a_name_sent_as_a_literal() -> None:
    lines = b"".join(
        b'* LIST (\\HasNoChildren) "/" "Clients/Client %d"\r\n' % n for n in range(5000)
    )
    replies = (
        b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n'
        + lines
        + b'* LIST (\\HasNoChildren) "/" {11}\r\nQuote"d one\r\n'
        + b"* 3 EXISTS\r\n"
        + b"T1 OK List completed.\r\n"
    )
    session, sent = session_over(replies)
    folders = session.list_folders()
    assert sent.sent == [b'T1 LIST "" "*"\r\n']
    assert len(folders) == 5002
    assert folders[0].name == "Sent" and "\\Sent" in folders[0].flags
    assert folders[4000].name == "Clients/Client 3999" and folders[4000].delimiter == "/"
    assert folders[-1].name == 'Quote"d one'


def test_more_folders_than_the_bound_is_our_limit_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answers, "LIST_FOLDER_LIMIT", 3)
    replies = b"".join(b'* LIST () "/" F%d\r\n' % n for n in range(4)) + b"T1 OK\r\n"
    session, sent = session_over(replies)
    with pytest.raises(MailAnswerTooLarge, match="listed more than 3 folders") as caught:
        session.list_folders()
    assert "did not refuse" in caught.value.message
    assert sent.file.closed


def test_a_list_line_over_the_bound_is_our_limit_said_so() -> None:
    name = b"x" * (answers.LIST_LINE_LIMIT + 10)
    with pytest.raises(MailAnswerTooLarge, match="was larger than 65,536 bytes"):
        read_list(reader(b'* LIST () "/" ' + name + b"\r\nT1 OK\r\n"), TAG, "LIST")
    literal = b'* LIST () "/" {%d}\r\n%s\r\nT1 OK\r\n' % (len(name), name)
    with pytest.raises(MailAnswerTooLarge, match="was larger than 65,536 bytes"):
        read_list(reader(literal), TAG, "LIST")


# FETCH (headers, Gmail's X-GM-THRID with them): one response is bounded.

SECTION = b"BODY[HEADER.FIELDS (FROM DATE)]"


def test_gmail_thread_ids_of_a_full_batch_are_read() -> None:
    header = b"From: a@example.com\r\n\r\n"
    replies = b"".join(
        b"* %d FETCH (X-GM-THRID %d X-GM-MSGID %d UID %d %s {%d}\r\n"
        % (n, 1_700_000_000_000_000_000 + n // 3, 1_800_000_000_000_000_000 + n, n, SECTION, 23)
        + header
        + b")\r\n"
        for n in range(1, 1001)
    )
    session, _ = session_over(replies + b"T1 OK\r\n")
    session.capabilities = frozenset({"X-GM-EXT-1"})
    fetched = session.fetch_headers(list(range(1, 1001)))
    assert len(fetched) == 1000
    assert fetched[999].gm_thrid == 1_700_000_000_000_000_000 + 1000 // 3
    assert fetched[999].header == header


def test_a_fetch_response_over_the_bound_is_our_limit_said_so() -> None:
    huge = imap.wire.RESPONSE_LIMIT + 1
    session, sent = session_over(
        b"* 1 FETCH (X-GM-THRID 5 UID 10 %s {%d}\r\nFrom: a" % (SECTION, huge)
    )
    session.capabilities = frozenset({"X-GM-EXT-1"})
    with pytest.raises(MailAnswerTooLarge, match="larger than 4,194,304 bytes") as caught:
        session.fetch_headers([10])
    assert "did not refuse" in caught.value.message
    assert sent.file.closed and sent.tagged_commands == {}


def test_imaplib_s_own_line_limit_is_not_blamed_on_the_server() -> None:
    with pytest.raises(MailAnswerTooLarge) as caught, _errors("UID FETCH"):
        raise imaplib.IMAP4.error("got more than 1000000 bytes")
    assert caught.value.message == (
        "a line of the answer to UID FETCH was larger than 1,000,000 bytes, the most this "
        "client reads in one line: the server did not refuse anything"
    )
