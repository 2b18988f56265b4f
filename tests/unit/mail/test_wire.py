"""The UID FETCH reader over byte strings: the shapes servers send, cut at any byte."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from app.errors import MailAnswerTooLarge, MailConnectionError, MailServerError
from app.mail.wire import FetchParser, FetchRecord, read_fetch
from tests.support.scripted_imap import session_over

TAG = b"KOGC7"
SECTION = b"BODY[HEADER.FIELDS (MESSAGE-ID SUBJECT FROM DATE)]"
DATE = b"23-Nov-2026 19:12:17 +0000"
HEADER_1 = b"From: a@example.com\r\nSubject: One\r\n\r\n"
HEADER_2 = b"From: b@example.com\r\nSubject: Two (2)\r\n\r\n"
DONE = TAG + b" OK Fetch completed (0.017 + 0.000 + 0.016 secs).\r\n"


def literal(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


def usual(seq: int, uid: int, header: bytes) -> bytes:
    return b'* %d FETCH (UID %d INTERNALDATE "%s" %s %s)\r\n' % (
        seq,
        uid,
        DATE,
        SECTION,
        literal(header),
    )


def parse(data: bytes, piece: int | None = None) -> list[FetchRecord]:
    """Feed `data` in pieces of `piece` bytes (all at once without); it must end the read."""
    parser = FetchParser(TAG, FetchRecord)
    pieces = [data] if piece is None else [data[i : i + piece] for i in range(0, len(data), piece)]
    for i, part in enumerate(pieces):
        assert not parser.done
        used = parser.feed(part)
        assert used == len(part) or i == len(pieces) - 1
    assert parser.done
    if parser.error is not None:
        raise parser.error
    return parser.records


def parse_every_split(data: bytes) -> list[FetchRecord]:
    """The same records whichever byte a read ends at, as two reads or as byte by byte."""
    whole = parse(data)
    for cut in range(1, len(data)):
        parser = FetchParser(TAG, FetchRecord)
        assert parser.feed(data[:cut]) == cut
        assert not parser.done
        parser.feed(data[cut:])
        assert parser.done and parser.records == whole, cut
    assert parse(data, 1) == whole
    return whole


def test_the_usual_response_in_one_read_or_split_anywhere() -> None:
    data = usual(1, 101, HEADER_1) + usual(2, 102, HEADER_2) + DONE
    assert parse_every_split(data) == [
        FetchRecord(101, DATE, None, None, HEADER_1, None),
        FetchRecord(102, DATE, None, None, HEADER_2, None),
    ]


def test_uid_after_the_literal() -> None:
    data = b'* 1 FETCH (INTERNALDATE "%s" %s %s UID 55)\r\n' % (DATE, SECTION, literal(HEADER_1))
    assert parse_every_split(data + DONE) == [FetchRecord(55, DATE, None, None, HEADER_1, None)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"NIL", b""),
        (b'""', b""),
        (b'"Subject: say \\"hi\\" \\\\o/"', b'Subject: say "hi" \\o/'),
        (b"{0}\r\n", b""),
    ],
)
def test_nil_or_a_quoted_string_instead_of_a_literal(value: bytes, expected: bytes) -> None:
    data = b"* 1 FETCH (UID 8 %s %s)\r\n* 2 FETCH (%s %s UID 9)\r\n" % (
        SECTION,
        value,
        SECTION,
        value,
    )
    assert parse_every_split(data + DONE) == [
        FetchRecord(8, header=expected),
        FetchRecord(9, header=expected),
    ]


def test_untagged_responses_and_a_flag_change_without_uid_are_skipped() -> None:
    data = (
        b"* 3 EXISTS\r\n"
        + usual(1, 101, HEADER_1)
        + b"* 2 FETCH (FLAGS (\\Seen))\r\n"
        + b"* 1 EXPUNGE\r\n"
        + b"* OK [HIGHESTMODSEQ 9] still here\r\n"
        + b"* 1 RECENT\r\n"
        + usual(2, 102, HEADER_2)
        + b"* 4 FETCH (FLAGS (\\Seen $Label) MODSEQ (12))\r\n"
        + DONE
    )
    assert [r.uid for r in parse_every_split(data)] == [101, 102]


def test_a_flag_change_with_a_uid_is_a_record_without_header() -> None:
    data = usual(1, 101, HEADER_1) + b"* 2 FETCH (UID 102 FLAGS (\\Seen))\r\n" + DONE
    assert parse_every_split(data) == [
        FetchRecord(101, DATE, None, None, HEADER_1, None),
        FetchRecord(102),
    ]


def test_a_literal_holding_what_looks_like_more_responses() -> None:
    tricky = (
        b"Subject: closing ) paren\r\n"
        b'* 5 FETCH (UID 999 INTERNALDATE "%s" %s {3}\r\nabc)\r\n'
        b"%s OK Fetch completed.\r\n"
        b"X-Note: }\r\n\r\n" % (DATE, SECTION, TAG)
    )
    data = usual(1, 101, tricky) + usual(2, 102, HEADER_2) + DONE
    records = parse_every_split(data)
    assert [(r.uid, r.header) for r in records] == [(101, tricky), (102, HEADER_2)]


def test_gmail_ids_in_any_order() -> None:
    one, two, three = literal(HEADER_1), literal(HEADER_2), literal(HEADER_2)
    data = (
        b'* 1 FETCH (X-GM-THRID 1700 X-GM-MSGID 1800 UID 7 INTERNALDATE "%s" %s %s)\r\n'
        % (DATE, SECTION, one)
        + b'* 2 FETCH (UID 8 INTERNALDATE "%s" X-GM-MSGID 1801 X-GM-THRID 1701 %s %s)\r\n'
        % (DATE, SECTION, two)
        + b"* 3 FETCH (X-GM-MSGID 1802 %s %s UID 9 X-GM-THRID 1702)\r\n" % (SECTION, three)
    )
    assert parse_every_split(data + DONE) == [
        FetchRecord(7, DATE, 1800, 1700, HEADER_1, None),
        FetchRecord(8, DATE, 1801, 1701, HEADER_2, None),
        FetchRecord(9, None, 1802, 1702, HEADER_2, None),
    ]


def test_text_partial_and_header_with_text_in_one_response() -> None:
    body = b"I am out of office until Monday.\r\n"
    data = (
        b"* 1 FETCH (UID 5 BODY[TEXT]<0> %s)\r\n" % literal(body)
        + b"* 2 FETCH (UID 6 %s %s BODY[TEXT]<0> %s)\r\n"
        % (SECTION, literal(HEADER_1), literal(body))
        + b"* 3 FETCH (UID 7 BODY[TEXT]<0> NIL)\r\n"
    )
    assert parse_every_split(data + DONE) == [
        FetchRecord(5, text=body),
        FetchRecord(6, header=HEADER_1, text=body),
        FetchRecord(7, text=b""),
    ]


def test_a_whole_message_is_read_as_its_text() -> None:
    """BODY[] (what a draft forwards), literal and all, with the size asked beside it."""
    message = HEADER_1 + b"Hello,\r\n) * 2 FETCH (UID 9 BODY[] {3}\r\n\r\nBye\r\n"
    data = b"* 4 FETCH (UID 8 RFC822.SIZE %d BODY[] %s)\r\n" % (len(message), literal(message))
    assert parse_every_split(data + DONE) == [FetchRecord(8, text=message)]


def test_a_response_over_the_limit_is_refused_before_its_literal_is_read() -> None:
    parser = FetchParser(TAG, FetchRecord, limit=1000)
    announced = b"* 1 FETCH (UID 5 BODY[] {50000000}\r\n"
    with pytest.raises(MailAnswerTooLarge, match="larger than 1,000 bytes"):
        parser.feed(announced + b"x" * 10)  # 10 of its 50,000,000 bytes: none is kept
    small = FetchParser(TAG, FetchRecord, limit=1000)
    small.feed(b"* 1 FETCH (UID 5 BODY[] %s)\r\n" % literal(b"y" * 900) + DONE)
    assert small.records == [FetchRecord(5, text=b"y" * 900)]


def test_a_uid_lookalike_in_the_section_or_flags_is_not_the_uid() -> None:
    section = b"BODY[HEADER.FIELDS (X-UID FROM)]"
    data = b"* 1 FETCH (FLAGS ($XUID 4) UID 12 %s %s)\r\n" % (section, literal(HEADER_1))
    assert [r.uid for r in parse_every_split(data + DONE)] == [12]


def test_other_tags_and_continuations_are_not_the_end() -> None:
    data = b"+ go ahead\r\nX99 OK not ours\r\n" + usual(1, 101, HEADER_1) + DONE
    assert [r.uid for r in parse_every_split(data)] == [101]


@pytest.mark.parametrize("status", [b"NO", b"BAD"])
def test_a_tagged_refusal_is_a_server_error_with_its_words(status: bytes) -> None:
    data = usual(1, 101, HEADER_1) + TAG + b" " + status + b" [SERVERBUG] Internal error\r\n"
    source = io.BufferedReader(io.BytesIO(data + b"* 9 EXISTS\r\n"))
    with pytest.raises(MailServerError, match=r"refused UID FETCH: .*\[SERVERBUG\] Internal error"):
        read_fetch(source, FetchParser(TAG, FetchRecord))
    assert source.read() == b"* 9 EXISTS\r\n"  # the tagged line was read, nothing more


def test_read_fetch_takes_exactly_this_command_s_bytes() -> None:
    data = usual(1, 101, HEADER_1) * 300 + DONE
    after = b"* 10 EXISTS\r\n"
    source = io.BufferedReader(io.BytesIO(data + after), buffer_size=4096)
    records = read_fetch(source, FetchParser(TAG, FetchRecord))
    assert len(records) == 300 and records[-1].header == HEADER_1
    assert source.read() == after


def test_make_builds_the_records_and_none_drops_one() -> None:
    data = usual(1, 101, HEADER_1) + usual(2, 102, HEADER_2) + DONE

    def uid_unless_101(
        uid: int,
        date: bytes | None,
        gm_msgid: int | None,
        gm_thrid: int | None,
        header: bytes | None,
        text: bytes | None,
    ) -> int | None:
        return None if uid == 101 else uid

    parser = FetchParser(TAG, uid_unless_101)
    parser.feed(data)
    assert parser.done and parser.records == [102]


@pytest.mark.parametrize("cut", [10, 120, 200])
def test_a_connection_closed_mid_response_is_a_connection_error(cut: int) -> None:
    data = (usual(1, 101, HEADER_1) + DONE)[:cut]
    source = io.BufferedReader(io.BytesIO(data))
    with pytest.raises(MailConnectionError, match="closed the connection during UID FETCH"):
        read_fetch(source, FetchParser(TAG, FetchRecord))


def test_bye_is_a_connection_error() -> None:
    data = usual(1, 101, HEADER_1) + b"* BYE Server shutting down.\r\n"
    source = io.BufferedReader(io.BytesIO(data))
    with pytest.raises(MailConnectionError, match="Server shutting down"):
        read_fetch(source, FetchParser(TAG, FetchRecord))


class TimingOut:
    def peek(self, size: int = 0, /) -> bytes:
        raise TimeoutError("timed out")

    def read(self, size: int | None = -1, /) -> bytes:
        raise AssertionError("nothing to read")


def test_a_socket_error_or_timeout_is_a_connection_error() -> None:
    with pytest.raises(MailConnectionError, match="dropped during UID FETCH: timed out"):
        read_fetch(TimingOut(), FetchParser(TAG, FetchRecord))


# The header pass through ImapSession, over a scripted socket: commands, tags, INTERNALDATE.


DATED = b"From: a@example.com\r\nDate: Mon, 16 Nov 2026 10:15:00 +0100\r\n\r\n"
UNDATED = b"From: b@example.com\r\nSubject: no date\r\n\r\n"


def test_fetch_headers_reads_headers_only_and_internal_dates_on_demand() -> None:
    replies = (
        b"* 1 FETCH (UID 10 %s %s)\r\n" % (SECTION, literal(DATED))
        + b"* 7 EXISTS\r\n"
        + b"* 2 FETCH (UID 11 %s %s)\r\n" % (SECTION, literal(UNDATED))
        + b"T1 OK Fetch completed.\r\n"
        + b'* 2 FETCH (UID 11 INTERNALDATE "16-Nov-2026 09:00:00 +0000")\r\n'
        + b"T2 OK Fetch completed.\r\n"
    )
    session, imap = session_over(replies)
    fetched = session.fetch_headers([10, 11])

    assert [(f.uid, f.header, f.internal_date_raw) for f in fetched] == [
        (10, DATED, None),
        (11, UNDATED, None),
    ]
    assert imap.sent == [imap.sent[0]] and imap.sent[0].startswith(
        b"T1 UID FETCH 10:11 (UID BODY.PEEK[HEADER.FIELDS ("
    )
    assert session.fetch_internal_dates([11, 12]) == {11: datetime(2026, 11, 16, 9, 0, tzinfo=UTC)}
    assert imap.sent[1] == b"T2 UID FETCH 11:12 (UID INTERNALDATE)\r\n"
    assert session.round_trips == 2 and imap.tagged_commands == {}
    assert imap.file.read() == b""


def test_fetch_text_prefixes_by_uid() -> None:
    replies = (
        b"* 1 FETCH (UID 10 BODY[TEXT]<0> %s)\r\n" % literal(b"Out of office.\r\n")
        + b"* 2 FETCH (UID 11 BODY[TEXT]<0> NIL)\r\n"
        + b"* 3 FETCH (FLAGS (\\Seen))\r\n"
        + b"T1 OK done\r\n"
    )
    session, imap = session_over(replies)
    assert session.fetch_text_prefixes([10, 11, 12], size=100) == {
        10: b"Out of office.\r\n",
        11: b"",
    }
    assert imap.sent == [b"T1 UID FETCH 10:12 (UID BODY.PEEK[TEXT]<0.100>)\r\n"]


def test_a_dropped_connection_closes_the_reader_and_cleans_the_tag() -> None:
    session, imap = session_over(b"* 1 FETCH (UID 10 %s {500}\r\nFrom: a" % SECTION)
    with pytest.raises(MailConnectionError):
        session.fetch_headers([10])
    assert imap.file.closed and imap.tagged_commands == {}


def test_a_refused_fetch_is_a_server_error_and_the_session_goes_on() -> None:
    replies = b"T1 BAD Error in IMAP command UID FETCH: Invalid uidset\r\n" + (
        b"* 1 FETCH (UID 10 %s %s)\r\nT2 OK done\r\n" % (SECTION, literal(DATED))
    )
    session, imap = session_over(replies)
    with pytest.raises(MailServerError, match="Invalid uidset"):
        session.fetch_headers([10])
    assert [f.uid for f in session.fetch_headers([10])] == [10]
    assert imap.tagged_commands == {}
