from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.headers import extract_message_ids, parse_header_bytes


def test_reads_the_fields_decisions_need() -> None:
    raw = (
        b"Message-ID: <abc@example.com>\r\n"
        b"In-Reply-To: <parent@example.com>\r\n"
        b"References: <root@example.com>, <parent@example.com>\r\n"
        b"Subject: =?utf-8?q?Angebot_f=C3=BCr_M=C3=BCller?=\r\n"
        b"From: =?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.COM>\r\n"
        b"To: Rep <rep@seller.com>, other@buyer.org\r\n"
        b"Cc: boss@buyer.org\r\n"
        b"Date: Fri, 13 Nov 2026 14:02:00 +0100\r\n"
        b"Auto-Submitted: auto-replied\r\n\r\n"
    )
    facts = parse_header_bytes(raw)
    assert facts.message_id == "<abc@example.com>"
    assert facts.in_reply_to == ("<parent@example.com>",)
    assert facts.references == ("<root@example.com>", "<parent@example.com>")
    assert facts.subject == "Angebot für Müller"
    assert facts.from_ is not None
    assert facts.from_.name == "Jürgen Müller"
    assert facts.from_.normalized == "juergen@example.com"
    assert [a.normalized for a in facts.to] == ["rep@seller.com", "other@buyer.org"]
    assert [a.normalized for a in facts.cc] == ["boss@buyer.org"]
    assert facts.date == datetime(2026, 11, 13, 13, 2, tzinfo=UTC)
    assert facts.signals["auto-submitted"] == "auto-replied"
    assert facts.defects == ()


def test_raw_8bit_subject_is_read_as_utf8() -> None:
    facts = parse_header_bytes("Subject: Grüße aus Köln\r\n\r\n".encode())
    assert facts.subject == "Grüße aus Köln"


def test_missing_message_id_and_bad_date_are_defects_not_errors() -> None:
    facts = parse_header_bytes(b"Subject: hi\r\nDate: yesterday-ish\r\n\r\n")
    assert facts.message_id is None
    assert facts.date is None
    assert "no usable Message-ID" in facts.defects
    assert any("Date" in d for d in facts.defects)


def test_message_ids_tolerate_commas_comments_and_duplicates() -> None:
    value = "<a@x> , <b@x> (comment) <a@x>\r\n\t<c@x>"
    assert extract_message_ids(value) == ["<a@x>", "<b@x>", "<c@x>"]


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parse_header_bytes(raw)


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("<abc@example.com>", "<abc@example.com>"),
        ("abc@example.com", "<abc@example.com>"),  # no brackets: still its Message-ID
        ("  abc.123@mail.example.com  ", "<abc.123@mail.example.com>"),
        ("(none)", None),  # junk never ties unrelated messages together
        ("unknown", None),
        ("abc@example.com extra@words", None),
        ("", None),
    ],
)
def test_a_message_id_without_angle_brackets_is_still_its_message_id(
    written: str, read: str | None
) -> None:
    raw = f"From: a@b.example\r\nMessage-ID: {written}\r\nIn-Reply-To: {written}\r\n\r\n"
    facts = parse_header_bytes(raw.encode())
    assert facts.message_id == read
    assert facts.in_reply_to == ((read,) if read else ())
