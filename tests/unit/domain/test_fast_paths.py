"""The fast paths give exactly what the general paths give: header blocks (`parse_header_bytes`
against `parse_header_general`), bodies (`extract_body` against `extract_body_general`), the
cheap dataclass constructors, and classification on top of both.

The shared corpora (../shared/corpora, read in place, never copied) add real mail when present.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain import autoreply, decline, headers, replytext
from app.domain.body import _plain_text_body, extract_body, extract_body_general
from app.domain.bounces import DeliveryReport
from app.domain.caseless import CaselessPattern
from app.domain.classify import classify
from app.domain.headers import parse_date, parse_header_bytes, parse_header_general
from app.domain.model import (
    Address,
    Classification,
    Decision,
    HeaderFacts,
    Identity,
    MessageBody,
    MessageKind,
    RecipientStatus,
    Subkind,
    ThreadHistory,
    ThreadMessage,
    ThreadState,
    canonical_address,
    cheap_init,
)
from app.domain.replytext import ReplyText
from app.domain.threads import ThreadLinks
from app.domain.worktime import BusinessSpan
from app.mail.pipeline import mime_head
from tests.support.corpora import CORPORA, corpus_files, needs_corpora
from tests.unit.domain.mailcases import CASES

NOW_UTC = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)

REP = Identity.from_addresses(["rep@seller.example"])


def sync_headers() -> list[bytes]:
    """The three shapes of bench/sync_bench.py as the IMAP header FETCH returns them."""
    when = "Mon, 02 Mar 2026 10:00:00 +0100"
    out = []
    for i in range(30):
        shape = i % 3
        if shape == 0:
            fields = [
                ("From", "Rep Person <rep@seller.example>"),
                ("To", f'"Buyer, Number {i}" <buyer{i}@customer{i}.example>'),
                ("Subject", f"Proposal {i} for your team"),
                ("Date", when),
                ("Message-ID", f"<out{i}@seller.example>"),
            ]
        elif shape == 1:
            fields = [
                ("From", f"Buyer {i} <buyer{i}@customer{i}.example>"),
                ("To", "rep@seller.example"),
                ("Subject", f"Re: Proposal {i} for your team"),
                ("Date", when),
                ("Message-ID", f"<in{i}@customer.example>"),
                ("In-Reply-To", f"<out{i}@seller.example>"),
                ("References", f"<out{i}@seller.example>"),
            ]
        else:
            fields = [
                ("From", "Newsletter <news@vendor.example>"),
                ("To", "rep@seller.example"),
                ("Subject", f"Weekly digest {i}"),
                ("Date", when),
                ("Message-ID", f"<news{i}@vendor.example>"),
                ("List-Id", "<weekly.vendor.example>"),
                ("List-Unsubscribe", "<mailto:unsub@vendor.example>"),
            ]
        fields.append(("Content-Type", "text/plain; charset=utf-8"))
        out.append("".join(f"{k}: {v}\r\n" for k, v in fields).encode() + b"\r\n")
    return out


HEADER_TABLE: list[bytes] = [
    *sync_headers(),
    b"",
    b"\r\n",
    b"Subject: hi\r\n",
    b"Subject: hi",
    b"Subject: hi\n\nbody",
    b"Subject: hi\r\n\r\nFrom: not@header.example\r\n",
    b"\r\n\r\nSubject: after blank lines\r\n",
    b"Subject: a\r\n folded\r\n\tand again\r\nTo: a@b.example\r\n\r\n",
    b"Subject: a\r\n \r\nTo: a@b.example\r\n\r\n",  # a blank-looking line ends the header
    b" leading continuation\r\nSubject: x\r\n\r\n",
    b"To: a@b.example\r\nTo: c@d.example\r\n more@e.example\r\nCc: x@y.example\r\n\r\n",
    b"From: a@b.example\r\nFrom: c@d.example\r\n\r\n",
    b"Subject : spaced name\r\nFrom\t: tabbed@name.example\r\n\r\n",
    b"not a header line\r\nSubject: x\r\n\r\n",
    b"Subject: x\rstray CR\r\n\r\n",
    b"Subject: x\nLF: only\r\nMixed: ends\r\n\r\n",
    b"Subject: x\x0bvertical tab\r\n\r\n",
    "Subject: Grüße\r\n\r\n".encode(),
    b"Subject: caf\xe9\r\n\r\n",
    b"Subject: =?utf-8?q?Angebot_f=C3=BCr_M=C3=BCller?=\r\n"
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@x.de>\r\n",
    b"To: (comment) a@b.example; group: c@d.example;\r\n\r\n",
    b"References: <a@x> , <b@x> (c) <a@x>\r\n\t<c@x>\r\nMessage-ID: no brackets\r\n\r\n",
    b"Date: 2 Mar 2026 9:05 -0000\r\nMessage-ID: <x@y>\r\n\r\n",
    b"Date: Mon, 31 Feb 2026 10:00:00 +0100\r\n\r\n",
    b"Date: Mon, 02 Mar 2026 24:00:00 +0100\r\n\r\n",
    b"Date: Mon, 02 Mar 2026 10:00:00 +2500\r\n\r\n",
    b"Date: Mon, 02 Mar 1850 10:00:00 +0100\r\n\r\n",
    b"Date: yesterday-ish\r\n\r\n",
    b"Thread-Index: AdYNU3Zh6FyWnRgNQKm9eZ8zI7CAkw==\r\nX-Autoreply: yes\r\n\r\n",
    b"Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=b\r\n\r\n",
    b"References: "
    + b"<r@x.example> " * 3000
    + b"\r\nTo: "
    + b"a@b.example, " * 2000
    + b"\r\n\r\n",
    b"References: " + b"<r@x.example>\r\n " * 1500 + b"<last@x.example>\r\nSubject: long\r\n\r\n",
]


@pytest.mark.parametrize("raw", HEADER_TABLE)
def test_fast_header_parse_equals_the_general_loop(raw: bytes) -> None:
    assert parse_header_bytes(raw) == parse_header_general(raw)


def test_the_sync_shapes_take_the_fast_path() -> None:
    # The general loop records no defect for these either; what matters is the same result.
    for raw in sync_headers():
        facts = parse_header_bytes(raw)
        assert facts == parse_header_general(raw)
        assert facts.message_id is not None and facts.date is not None


_PIECES = st.sampled_from(
    [
        b"From",
        b"To",
        b"Cc",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"References",
        b"List-Id",
        b"Content-Type",
        b"X-Y",
        b":",
        b": ",
        b" ",
        b"\t",
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n ",
        b"\r\n\t",
        b"\r\n\r\n",
        b"\n\n",
        b"<a@b>",
        b"a@b.c",
        b'"N, M" <x@y.z>',
        b"=?utf-8?q?x=C3=A9?=",
        b"Mon, 2 Mar 2026 10:00:00 +0100",
        b"\xc3\xa9",
        b"\xe9",
        b"\x0b",
        b"\x1c",
        b"\x7f",
        b"x",
        b",",
        b"(c)",
    ]
)


@settings(max_examples=200, suppress_health_check=list(HealthCheck))
@given(st.lists(_PIECES, max_size=40).map(b"".join))
def test_fast_header_parse_equals_the_general_loop_on_generated_headers(raw: bytes) -> None:
    assert parse_header_bytes(raw) == parse_header_general(raw)


def _old_parse_date(value: str) -> datetime | None:
    """The arithmetic `parse_date` used before it read ISO text (the reference)."""
    match = re.match(
        r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+"
        r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-])(\d{2})(\d{2})(?:\s|$)",
        value,
    )
    months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    if match is not None and match.group(2).lower() in months:
        day, month, year, hh, mm, ss, sign, oh, om = match.groups()
        offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
        try:
            local = datetime(
                int(year), months.index(month.lower()) + 1, int(day), int(hh), int(mm), int(ss or 0)
            )
        except ValueError:
            local = None
        if local is not None:
            return (local - offset).replace(tzinfo=UTC)
    return parse_date(value, [])  # the rest is read as before: parsedate_to_datetime


@settings(max_examples=200)
@given(
    st.integers(1, 39),
    st.sampled_from(["Jan", "feb", "MAR", "Dec", "Foo"]),
    st.integers(1890, 2110),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61) | st.none(),
    st.sampled_from(["+", "-"]),
    st.integers(0, 25),
    st.integers(0, 99),
)
def test_parse_date_equals_the_arithmetic_reading(
    day: int, month: str, year: int, hh: int, mm: int, ss: int | None, sign: str, oh: int, om: int
) -> None:
    seconds = "" if ss is None else f":{ss:02d}"
    value = f"Mon, {day} {month} {year} {hh}:{mm:02d}{seconds} {sign}{oh:02d}{om:02d}"
    assert parse_date(value, []) == _old_parse_date(value)
    padded = f"Mon, {day:02d} {month} {year} {hh:02d}:{mm:02d}{seconds} {sign}{oh:02d}{om:02d}"
    for text in (padded, f"{padded} (CET)", f"{padded}x", padded.replace(" ", "  ", 1)):
        assert parse_date(text, []) == _old_parse_date(text), text


@needs_corpora
def test_corpora_headers_parse_the_same_both_ways() -> None:
    files = corpus_files()
    assert files
    for raw in files:
        assert parse_header_bytes(raw) == parse_header_general(raw), raw[:200]


# --- bodies -------------------------------------------------------------------------------

PLAIN = b"Content-Type: text/plain; charset=utf-8\r\nMIME-Version: 1.0\r\n\r\n"
BODY_TABLE: list[bytes] = [
    PLAIN + b"Thanks, let us talk next week.\r\n",
    PLAIN + b"",
    PLAIN
    + "Grüße\r\n\r\nOn Mon, 2 Mar 2026, Rep <rep@seller.example> wrote:\r\n> offer\r\n".encode(),
    PLAIN + b"caf\xe9 in cp1252\r\n",
    PLAIN + b"Message-ID: <returned@seller.example>\r\n",
    b"MIME-Version: 1.0\r\n\r\nno content type\r\n",
    b'Content-Type: TEXT/Plain; CHARSET="ISO-8859-1"; format=flowed\r\n\r\ncaf\xe9\r\n',
    b"Content-Type: text/plain; charset=bogus-charset\r\n\r\ntext\r\n",
    b"Content-Type: text/plain; charset=<utf-8>\r\n\r\ntext\r\n",
    b"Content-Type: text/plain; charset=\r\n\r\ntext\r\n",
    b"Content-Type: text/plain; charset*=utf-8''x\r\n\r\ntext\r\n",
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n"
    b"\r\nThanks, see you next w=C3=A9ek.=\r\n soft break =XX bad escape\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nVGhhbmtz\r\n",
    b"Content-Type: text/plain\r\nContent-Transfer-Encoding: x-unknown\r\n\r\nabc\r\n",
    b"Content-Type: text/plain\r\nContent-Disposition: attachment; filename=a.txt\r\n\r\nabc\r\n",
    b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\n<p>two types</p>\r\n",
    b"Content-Type: text/plain;\r\n charset=utf-8\r\n\r\nfolded type\r\n",
    b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Yes &amp; thanks</p>\r\n",
    b'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n'
    b"\r\nSounds good\r\n--b--\r\n",
    b"Content-Type: text/calendar; method=REPLY\r\n\r\nMETHOD:REPLY\r\nPARTSTAT=ACCEPTED\r\n",
    b"Content-Type: text/plain\nMIME-Version: 1.0\n\nLF only\n",
    b"Content-Type: text/plain\r\n\r\n",
    b"Content-Type: text/plain",
    *(case.raw for case in CASES),
]


@pytest.mark.parametrize("raw", BODY_TABLE)
def test_fast_body_equals_the_parser(raw: bytes) -> None:
    assert extract_body(raw) == extract_body_general(raw)


def test_the_common_answer_takes_the_fast_path() -> None:
    assert _plain_text_body(BODY_TABLE[0]) is not None
    assert _plain_text_body(BODY_TABLE[11]) is not None  # quoted-printable
    assert _plain_text_body(BODY_TABLE[13]) is None  # base64: the parser's


_HEAD_PIECES = st.sampled_from(
    [
        b"Content-Type: ",
        b"text/plain",
        b"TEXT/Plain",
        b"; charset=",
        b"utf-8",
        b'"utf-8"',
        b"iso-8859-1",
        b"bogus",
        b"<utf-8>",
        b"; format=flowed",
        b";",
        b" ",
        b"\t",
        b"\r\n",
        b"\n",
        b"Content-Transfer-Encoding: ",
        b"quoted-printable",
        b"7bit",
        b"base64",
        b"Content-Disposition: attachment",
        b"MIME-Version: 1.0",
        b"text/html",
        b"charset*=",
        b"\r\n ",
        b"\\",
    ]
)
_BODY_PIECES = st.sampled_from(
    [
        b"Thanks",
        b"=C3=A9",
        b"=\r\n",
        b"=",
        b"\xc3\xa9",
        b"\xe9",
        b"\r\n",
        b"\n",
        b"\r",
        b"> quoted",
        b"Message-ID: <a@b>",
        b"On Mon, Rep wrote:",
        b"=XX",
    ]
)


@settings(max_examples=200, suppress_health_check=list(HealthCheck))
@given(st.lists(_HEAD_PIECES, max_size=14).map(b"".join), st.lists(_BODY_PIECES, max_size=14))
def test_fast_body_equals_the_parser_on_generated_messages(head: bytes, body: list[bytes]) -> None:
    raw = head + b"\r\n\r\n" + b"".join(body)
    assert extract_body(raw) == extract_body_general(raw)


@needs_corpora
def test_corpora_bodies_and_classifications_are_the_same_both_ways() -> None:
    files = corpus_files()
    assert files
    for raw in files:
        facts = parse_header_bytes(raw)
        text = raw.partition(b"\r\n\r\n")[2] if b"\r\n\r\n" in raw else raw.partition(b"\n\n")[2]
        for message in (raw, mime_head(facts.signals) + text, PLAIN + raw):
            fast = _plain_text_body(message)  # else extract_body is the general path itself
            if fast is not None:
                general = extract_body_general(message)
                assert fast == general, message[:200]
                assert classify(facts, REP, fast) == classify(facts, REP, general)


# --- cheap constructors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "values"),
    [
        (Address, {"email": "a@b.example"}),
        (Address, {"email": "a@b.example", "name": "A"}),
        (HeaderFacts, {"message_id": None}),
        (HeaderFacts, {"message_id": "<a@b>", "subject": "s", "signals": {"x": "y"}}),
        (Classification, {"kind": MessageKind.REPLY, "reason": "r", "decline": True}),
        (MessageBody, {}),
        (MessageBody, {"text": "t", "returned_message_ids": ("<a@b>",)}),
        (RecipientStatus, {"recipient": "a@b", "status": "5.1.1"}),
        (ThreadLinks, {"key": "<a@b>", "references": ()}),
        (ReplyText, {"own": "x", "quoted": True}),
        (DeliveryReport, {"reason": "r"}),
        (
            ThreadMessage,
            {
                "message_id": "<a@b>",
                "kind": MessageKind.REPLY,
                "date": NOW_UTC,
                "sender": "a@b.example",
            },
        ),
        (
            ThreadMessage,
            {
                "message_id": "<a@b>",
                "kind": MessageKind.AUTO_REPLY,
                "date": NOW_UTC,
                "sender": "a@b.example",
                "sender_name": "A",
                "recipients": ("r@s.example",),
                "subkind": Subkind.OUT_OF_OFFICE,
                "decline": True,
                "replacement_contact": "c@b.example",
            },
        ),
        (ThreadHistory, {"messages": ()}),
        (ThreadHistory, {"messages": (), "closed_reason": "no", "answered_note": "called"}),
        (Decision, {"state": ThreadState.QUIET, "reason": "r", "next_check_at": None}),
        (
            Decision,
            {
                "state": ThreadState.REPLIED,
                "reason": "r",
                "next_check_at": NOW_UTC,
                "needs_response": True,
                "step": 2,
                "followups_sent": 1,
            },
        ),
        (BusinessSpan, {"due_at": NOW_UTC, "skipped": ()}),
    ],
)
def test_cheap_init_builds_what_the_dataclass_init_builds(
    cls: type, values: dict[str, object]
) -> None:
    built = cls(**values)
    for f in dataclasses.fields(cls):
        if f.name in values:
            assert getattr(built, f.name) == values[f.name]
        elif f.default is not dataclasses.MISSING:
            assert getattr(built, f.name) == f.default
        else:
            assert getattr(built, f.name) == f.default_factory()  # type: ignore[misc]
    assert built == cls(**values)
    assert repr(built).startswith(f"{cls.__name__}(")
    assert dataclasses.replace(built) == built
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.x = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        cls(**values, not_a_field=1)


def test_cheap_init_keeps_each_default_factory_fresh() -> None:
    a, b = HeaderFacts(message_id=None), HeaderFacts(message_id=None)
    assert a.signals == {} and a.signals is not b.signals


def test_cheap_init_refuses_a_class_that_checks_its_values() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Checked:
        n: int

        def __post_init__(self) -> None:
            if self.n < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError):
        cheap_init(Checked)


# --- case-insensitive phrase patterns -------------------------------------------------------


def _caseless_patterns() -> list[CaselessPattern]:
    found = []
    for module in (autoreply, decline, replytext):
        found += [v for v in vars(module).values() if isinstance(v, CaselessPattern)]
    return found


def _texts() -> list[str]:
    texts = [
        "Thanks, let us talk next week.",
        "I am OUT OF THE OFFICE until Monday.",
        "We are NOT INTERESTED, please remove me from your list.",
        "On Mon, 2 Mar 2026 at 10:00, Jane Doe <jane@x.example> WROTE:",
        "Jane yazdı:",
        "Jane YAZDI:",
        "Jane yazdi:",
        "-----Original Message-----",
        "Sent from my iPhone",
        "Ich bin bis 3. März NICHT IM BÜRO.",
        "İstanbul ofisi: KELVIN \u212a and long \u017f",
        "From: Jane\nSent: Monday\nTo: Rep\nSubject: Offer",
    ]
    # Real replies widen the texts when the corpora are there; test_corpora.py is the test that
    # fails in CI when they are missing.
    for path in sorted((CORPORA / "email-reply-trimmer" / "emails").glob("*"))[:80]:
        texts += path.read_text(errors="replace").splitlines()[:40]
    return texts


@pytest.mark.parametrize("pattern", _caseless_patterns(), ids=lambda p: p.pattern.pattern[:30])
def test_caseless_patterns_find_what_ignorecase_finds(pattern: CaselessPattern) -> None:
    for text in _texts():
        first = pattern.pattern.search(text)
        assert pattern.search(text) == (first.span() if first else None), text
        assert pattern.matches_start(text) == bool(pattern.pattern.match(text)), text
        expected = [m.span() for m in pattern.pattern.finditer(text)]
        assert list(pattern.spans(text)) == expected, text


@settings(max_examples=300)
@given(st.text(alphabet="aAbBıIİiKk\u212aſsS oOnN:>-@wrote yazdı \n", max_size=40))
def test_caseless_patterns_agree_on_generated_text(text: str) -> None:
    for pattern in _caseless_patterns():
        first = pattern.pattern.search(text)
        assert pattern.search(text) == (first.span() if first else None), text
        assert pattern.matches_start(text) == bool(pattern.pattern.match(text)), text


def test_caseless_refuses_upper_case_letters() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        CaselessPattern(r"Wrote")
    assert CaselessPattern(r"\bwrote\S*").search("He WROTE:") == (3, 9)


def test_may_have_phrase_is_false_only_when_no_phrase_is_found() -> None:
    for text in _texts():
        found = [
            autoreply.out_of_office_phrase(text),
            autoreply.left_company_phrase(text),
            autoreply.autoresponder_phrase(text),
            autoreply.challenge_phrase(text),
        ]
        assert autoreply.may_have_phrase(text) == any(f is not None for f in found), text


def test_every_quote_header_ends_as_the_precheck_expects() -> None:
    header = replytext._QUOTE_HEADER_RE.pattern
    lines = [line for text in _texts() for line in text.splitlines()]
    lines += ["写道", "Jane 寫道：", "2016-03-03 17:21 GMT+01:00 Some One <one@x.org> :", "--"]
    lines += ["---- On Tue, 22 Dec 2015 Sam <sam@x> wrote ----  ", "Am 1. März schrieb Max:\t"]
    for line in lines:
        if header.match(line):
            assert line.rstrip()[-1:] in replytext._HEADER_ENDINGS, line


@pytest.mark.parametrize(
    "addresses", [["rep@seller.example"], ["Rep+x@Seller.example", "rep@gmail.com"], ["local"]]
)
def test_is_own_address_equals_the_canonical_comparison(addresses: list[str]) -> None:
    identity = Identity.from_addresses(addresses)
    candidates = [
        "rep@seller.example",
        "REP+crm@seller.EXAMPLE ",
        "rep@other.example",
        "other@seller.example",
        "rep+a+b@gmail.com",
        "local",
        " LOCAL ",
        "@seller.example",
        "",
        "a@b@seller.example",
    ]
    for email in candidates:
        expected = email in identity.addresses or canonical_address(email) in identity.addresses
        assert identity.is_own_address(email) == expected, email


def _split_address_by_regex(part: str) -> tuple[str, str]:
    match = headers._ADDR_RE.match(part)
    if match:
        name = match.group(1)
        if len(name) > 1 and name[0] == '"' and name[-1] == '"':
            name = name[1:-1]
        return name, match.group(2)
    return "", part.strip()


@settings(max_examples=300)
@given(st.text(alphabet=' \t\n\u00a0"<>@abN,.', max_size=30))
def test_split_address_reads_as_the_regex_reads(part: str) -> None:
    assert headers._split_address(part) == _split_address_by_regex(part)
