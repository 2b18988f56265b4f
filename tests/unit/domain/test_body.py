from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.body import extract_body
from app.domain.classify import classify
from app.domain.headers import parse_header_bytes
from tests.unit.domain.mailcases import CASES, REP

DSN = (
    b"From: MAILER-DAEMON@mx.buyer.org\r\nSubject: Undelivered Mail\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you.\r\n"
    b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.buyer.org\r\n\r\n"
    b"Final-Recipient: rfc822; <Anna@Buyer.org>\r\nAction: failed\r\nStatus: 5.1.1 (user unknown)"
    b"\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n"
    b"Final-Recipient: rfc822; ben@buyer.org\r\nAction: delayed\r\nStatus: 4.4.7\r\n\r\n"
    b"--b\r\nContent-Type: message/rfc822\r\n\r\nMessage-ID: <offer-1@seller.com>\r\n"
    b"To: Anna <anna@buyer.org>, ben@buyer.org\r\nSubject: Offer\r\n\r\nHi Anna\r\n--b--\r\n"
)


def test_delivery_status_fields_and_returned_original() -> None:
    body = extract_body(DSN)
    assert body.content_type == "multipart/report"
    assert body.report_type == "delivery-status"
    assert [(s.recipient, s.action, s.status) for s in body.delivery_status] == [
        ("anna@buyer.org", "failed", "5.1.1"),
        ("ben@buyer.org", "delayed", "4.4.7"),
    ]
    assert "550 5.1.1" in body.delivery_status[0].diagnostic
    assert body.returned_message_ids == ("<offer-1@seller.com>",)
    assert body.returned_recipients == ("anna@buyer.org", "ben@buyer.org")
    assert body.text.startswith("I'm sorry")  # the returned original's text is not theirs


def test_a_message_cut_at_16_kb_still_reads() -> None:
    body = extract_body(DSN[: DSN.index(b"Action: delayed")])
    assert body.delivery_status[0].action == "failed"
    assert body.defects  # the missing closing boundary is recorded, not raised


def test_message_id_lines_of_an_inline_original() -> None:
    raw = (
        b"From: MAILER-DAEMON@x\r\nSubject: failure notice\r\n\r\n"
        b"--- Below this line is a copy of the message.\r\n\r\n"
        b"Message-Id: <offer-1@seller.com>\r\nSubject: Offer\r\n"
    )
    assert extract_body(raw).returned_message_ids == ("<offer-1@seller.com>",)


def test_html_only_body_becomes_text_with_quotes_marked() -> None:
    raw = (
        b"Content-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{}</style></head><body><p>Yes &amp; thanks!</p>"
        b'<div class="gmail_quote">On Mon, Rep wrote:<blockquote>Offer</blockquote></div>'
        b"</body></html>"
    )
    body = extract_body(raw)
    assert body.text_is_html
    assert body.text.splitlines()[0] == "Yes & thanks!"
    assert "> Offer" in body.text
    assert "p{}" not in body.text


def test_charsets_and_transfer_encodings() -> None:
    raw = (
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=FC=DFe aus K=F6ln\r\n"
    )
    assert extract_body(raw).text.strip() == "Grüße aus Köln"
    raw = b"Content-Type: text/plain; charset=x-unknown\r\n\r\n\xc3\xa9t\xc3\xa9\r\n"
    body = extract_body(raw)
    assert body.text.strip() == "été"
    assert any("charset" in d for d in body.defects)


def test_calendar_reply_and_read_receipt() -> None:
    cal = next(c for c in CASES if c.name == "accepted calendar invitation")
    body = extract_body(cal.raw)
    assert (body.calendar_method, body.calendar_partstat) == ("REPLY", "ACCEPTED")
    mdn = next(c for c in CASES if c.name.startswith("read receipt"))
    body = extract_body(mdn.raw)
    assert body.report_type == "disposition-notification"
    assert body.disposition is not None and "displayed" in body.disposition
    assert body.returned_message_ids == ("<offer-1@seller.com>",)


@settings(max_examples=300)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    body = extract_body(raw)
    classify(parse_header_bytes(raw), REP, body)
    classify(parse_header_bytes(raw), REP)


@settings(max_examples=200)
@given(st.sampled_from(CASES), st.integers(min_value=0, max_value=4000), st.binary(max_size=40))
def test_cut_or_garbled_real_messages_never_raise(case: object, cut: int, junk: bytes) -> None:
    raw = case.raw[:cut] + junk  # type: ignore[attr-defined]
    classify(parse_header_bytes(raw), REP, extract_body(raw))
