"""The composed draft, read back with the standard library's parser."""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from app.domain.followup import FollowUpPlan, StoredMessage, plan_followup
from app.domain.model import Address, Identity, MessageKind, Rules
from app.domain.threads import thread_index_guid
from app.domain.worktime import WorkCalendar
from app.drafts.message import (
    FORWARD_MARKER,
    compose,
    draft_text,
    extend_thread_index,
    forward_parts,
    new_message_id,
    read_original,
    recompose,
    text_and_attachments,
    to_bytes,
    with_date,
)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
SENT = NOW - timedelta(days=7)
QUESTION = "Want to follow up in case this e-mail got buried."
ORIGINAL_TEXT = "Hallo Änna,\n\nhier ist das Angebot für Müller & Söhne: 12.000 €.\n\nGrüße\nJörg"
THREAD_INDEX = base64.b64encode(bytes([1]) + bytes(range(1, 6)) + bytes(range(16))).decode()


def original(*, html: bool = True, attachment: bytes | None = None) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "Jörg Rep <rep@seller.example>"
    msg["To"] = "Änna Schmidt <anna@buyer.example>"
    msg["Cc"] = "Bob <bob@buyer.example>"
    msg["Subject"] = "AW: Angebot für Müller"
    msg["Date"] = format_datetime(SENT)
    msg["Message-ID"] = "<o1@seller.example>"
    msg["References"] = "<start@buyer.example>"
    msg["Thread-Index"] = THREAD_INDEX
    msg["Thread-Topic"] = "Angebot für Müller"
    msg.set_content(ORIGINAL_TEXT)
    if html:
        msg.add_alternative(
            "<html><head><style>p{}</style></head><body><p>Hallo Änna,</p>"
            "<p>hier ist das <b>Angebot</b>.</p></body></html>",
            subtype="html",
        )
    if attachment is not None:
        msg.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="Angebot.pdf"
        )
    return msg.as_bytes()


def plan_for(raw: bytes) -> tuple[FollowUpPlan, object]:
    parts = forward_parts(read_original(raw), now=NOW, seed="7")
    stored = StoredMessage(
        message_id="<o1@seller.example>",
        kind=MessageKind.OUTBOUND,
        date=SENT,
        subject="AW: Angebot für Müller",
        sender=Address(email="rep@seller.example", name="Jörg Rep"),
        to=(Address(email="anna@buyer.example"),),
        cc=(Address(email="bob@buyer.example"),),
        references=("<start@buyer.example>",),
    )
    plan = plan_followup(
        thread_id=7,
        step=1,
        messages=[stored],
        identity=Identity.from_addresses(["rep@seller.example"]),
        rules=Rules(),
        calendar=WorkCalendar(timezone="Europe/Berlin", weekend=frozenset({5, 6})),
        now=NOW,
        names=parts.recipient_names,
    )
    return plan, parts


def compose_draft(raw: bytes, **kw: object) -> tuple[bytes, EmailMessage]:
    plan, parts = plan_for(raw)
    wire = to_bytes(
        compose(plan, QUESTION, parts, message_id="<d1@seller.example>", date=NOW, **kw)  # type: ignore[arg-type]
    )
    parsed = message_from_bytes(wire, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return wire, parsed


def test_headers_make_it_a_reply_in_the_same_thread() -> None:
    wire, msg = compose_draft(original())
    assert str(msg["From"]) == "Jörg Rep <rep@seller.example>"
    assert str(msg["To"]) == "Änna Schmidt <anna@buyer.example>"
    assert str(msg["Cc"]) == "Bob <bob@buyer.example>"
    assert str(msg["Subject"]) == "Re: Angebot für Müller"
    assert msg["Message-ID"] == "<d1@seller.example>"
    assert msg["In-Reply-To"] == "<o1@seller.example>"
    assert msg["References"].split() == ["<start@buyer.example>", "<o1@seller.example>"]
    assert msg["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert parsedate_to_datetime(msg["Date"]) == NOW
    assert msg["Date"].endswith("+0100")  # the mailbox's zone
    # On the wire: 7-bit headers, RFC 2047 for non-ASCII names and subjects, CRLF lines.
    head = wire.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?" in head
    assert b"\r\n" in wire and b"\n" not in wire.replace(b"\r\n", b"")


def test_without_a_message_id_to_answer_the_draft_has_no_threading_headers() -> None:
    plan, parts = plan_for(original())
    idless = dataclasses.replace(plan, in_reply_to=None, references=())
    msg = compose(idless, QUESTION, parts, message_id="<d1@seller.example>", date=NOW)
    assert "In-Reply-To" not in msg and "References" not in msg
    assert str(msg["Subject"]) == "Re: Angebot für Müller"


def test_text_and_attachments_of_an_email() -> None:
    text, attached = text_and_attachments(read_original(original(attachment=b"%PDF-1.4")))
    assert "hier ist das Angebot für Müller & Söhne" in text
    assert attached is True
    assert text_and_attachments(read_original(original()))[1] is False


def test_body_starts_with_the_question_then_the_forward_intact() -> None:
    _, msg = compose_draft(original())
    assert msg.get_content_type() == "multipart/alternative"
    text_part = msg.get_body(preferencelist=("plain",))
    html_part = msg.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    assert text_part.get_content_charset() == "utf-8"
    text = text_part.get_content().replace("\r\n", "\n")  # CRLF on the wire
    assert text.startswith(QUESTION + "\n\n" + FORWARD_MARKER + "\n")
    header_block = text.split("\n\n")[1].splitlines()
    assert header_block[1:] == [
        "From: Jörg Rep <rep@seller.example>",
        f"Date: {format_datetime(SENT)}",
        "Subject: AW: Angebot für Müller",
        "To: Änna Schmidt <anna@buyer.example>",
        "Cc: Bob <bob@buyer.example>",
    ]
    assert text.rstrip().endswith(ORIGINAL_TEXT)
    html = html_part.get_content()
    assert html.index(QUESTION) < html.index("Forwarded message") < html.index("<b>Angebot</b>")
    assert "Änna Schmidt &lt;anna@buyer.example&gt;" in html


def test_nothing_like_a_greeting_or_signature_is_added() -> None:
    _, msg = compose_draft(original())
    text_part = msg.get_body(preferencelist=("plain",))
    assert text_part is not None
    text = text_part.get_content().replace("\r\n", "\n")  # CRLF on the wire
    added = text[: text.index(FORWARD_MARKER)].strip()
    assert added == QUESTION
    for word in ("Hi", "Hello", "Dear", "Best", "Regards", "Thanks", "--"):
        assert word not in added


def test_an_html_only_original_still_gets_both_alternatives() -> None:
    msg = EmailMessage()
    msg["From"] = "rep@seller.example"
    msg["To"] = "anna@buyer.example"
    msg["Subject"] = "Proposal"
    msg["Date"] = format_datetime(SENT)
    msg["Message-ID"] = "<o1@seller.example>"
    msg.set_content("<p>Here is the <i>proposal</i>.</p>", subtype="html")
    _, draft = compose_draft(msg.as_bytes())
    text_part = draft.get_body(preferencelist=("plain",))
    assert text_part is not None
    assert "Here is the proposal." in text_part.get_content()
    html_part = draft.get_body(preferencelist=("html",))
    assert html_part is not None
    assert "<i>proposal</i>" in html_part.get_content()


def test_text_only_original_gets_an_html_version_of_its_text() -> None:
    _, msg = compose_draft(original(html=False))
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None
    assert "12.000 €" in html_part.get_content()
    assert "Müller &amp; Söhne" in html_part.get_content()


@pytest.mark.parametrize(("cap", "kept"), [(10_000, True), (10, False)])
def test_attachments_only_when_enabled_and_under_the_cap(cap: int, kept: bool) -> None:
    raw = original(attachment=b"%PDF-1.4 " + b"x" * 100)
    plan, _ = plan_for(raw)
    parts = forward_parts(read_original(raw), attachments=True, max_attachment_bytes=cap, now=NOW)
    msg = compose(plan, QUESTION, parts, message_id="<d1@seller.example>", date=NOW)
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names == (["Angebot.pdf"] if kept else [])
    assert parts.skipped_attachments == (() if kept else ("Angebot.pdf",))
    _, without = compose_draft(raw)
    assert list(without.iter_attachments()) == []  # off unless the mailbox enables it


def test_thread_index_is_extended_by_one_child_block() -> None:
    _, msg = compose_draft(original())
    index = base64.b64decode(msg["Thread-Index"])
    assert len(index) == 27
    assert index[:22] == base64.b64decode(THREAD_INDEX)
    assert thread_index_guid(msg["Thread-Index"]) == thread_index_guid(THREAD_INDEX)
    assert msg["Thread-Topic"] == "Angebot für Müller"
    assert extend_thread_index("not base64!", NOW) is None
    assert extend_thread_index(base64.b64encode(b"short").decode(), NOW) is None


def test_no_thread_index_without_one_in_the_original() -> None:
    raw = original().replace(b"Thread-Index:", b"X-Old-Index:")
    _, msg = compose_draft(raw)
    assert msg["Thread-Index"] is None and msg["Thread-Topic"] is None


def test_recompose_changes_the_question_and_keeps_the_rest() -> None:
    wire, _ = compose_draft(original(attachment=b"data"))
    later = NOW + timedelta(hours=2)
    again = to_bytes(
        recompose(wire, old_question=QUESTION, question="Any news?", body=None, date=later)
    )
    msg = message_from_bytes(again, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = draft_text(again)
    assert text.startswith("Any news?\n\n" + FORWARD_MARKER)
    assert text.rstrip().endswith(ORIGINAL_TEXT)
    assert msg["Message-ID"] == "<d1@seller.example>"  # the same draft, a new version
    assert parsedate_to_datetime(msg["Date"]) == later
    assert str(msg["Subject"]) == "Re: Angebot für Müller"
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None and "Any news?" in html_part.get_content()
    assert QUESTION not in html_part.get_content()


def test_a_rewritten_body_replaces_the_text_and_drops_the_html() -> None:
    wire, _ = compose_draft(original())
    again = to_bytes(
        recompose(wire, old_question=QUESTION, question=QUESTION, body="Just my words.", date=NOW)
    )
    msg = message_from_bytes(again, policy=policy.default)
    assert msg.get_content_type() == "text/plain"
    assert draft_text(again).strip() == "Just my words."


def test_new_message_id_is_at_the_reps_domain() -> None:
    first, second = new_message_id("Rep@Seller.Example"), new_message_id("rep@seller.example")
    assert first.endswith("@seller.example>") and first.startswith("<")
    assert first != second


def test_with_date_redates_the_draft_in_its_own_zone() -> None:
    wire, _ = compose_draft(original())
    later = NOW + timedelta(days=2, hours=3)
    redated = message_from_bytes(with_date(wire, later), policy=policy.default)
    assert parsedate_to_datetime(redated["Date"]) == later
    assert redated["Date"].endswith("+0100")
    assert redated["Message-ID"] == "<d1@seller.example>"
    assert draft_text(with_date(wire, later)) == draft_text(wire)
