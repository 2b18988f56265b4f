"""Which bodies the header pass reads at once: only those whose start can change a decision."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.domain.model import Identity
from app.mail.pipeline import prepare_message, wants_body, with_body

REP = Identity.from_addresses(["rep@seller.example"])
WHEN = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def header(*lines: str) -> bytes:
    return ("\r\n".join([*lines, "Date: Mon, 02 Nov 2026 09:00:00 +0000"]) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("raw", "wanted"),
    [
        (header("From: anna@buyer.example", "Message-ID: <a@b>", "In-Reply-To: <s@seller>"), True),
        (header("From: anna@buyer.example", "Message-ID: <a@b>"), False),  # answers nothing
        (header("From: rep@seller.example", "To: anna@buyer.example", "Message-ID: <s@s>"), False),
        (
            header("From: news@vendor.example", "Message-ID: <n@v>", "List-Id: <w.vendor.example>"),
            False,
        ),
        (
            header("From: anna@buyer.example", "Message-ID: <o@b>", "Auto-Submitted: auto-replied"),
            True,
        ),
        (header("From: MAILER-DAEMON@mx.example", "Message-ID: <d@mx>", "Subject: failure"), True),
        # One weak sign of a mass mailing: its footer may decide, though it answers nothing.
        (
            header(
                "From: hello@homefinder.example",
                "Message-ID: <h@f>",
                "Return-Path: <bounces+77-rep@em1.sendgrid.net>",
            ),
            True,
        ),
        (header("From: anna@buyer.example", "Message-ID: <a@b>", "X-Mailer: Outlook 16"), False),
    ],
)
def test_wants_body(raw: bytes, wanted: bool) -> None:
    assert wants_body(prepare_message(raw, identity=REP, fallback_date=WHEN)) is wanted


def test_with_body_reads_the_text_and_threads_a_bounce_to_what_it_returns() -> None:
    m = prepare_message(
        header(
            "From: MAILER-DAEMON@mx.example",
            "Message-ID: <d@mx>",
            "Subject: Undelivered Mail Returned to Sender",
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
        ),
        identity=REP,
        fallback_date=WHEN,
    )
    text = (
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example"
        b"\r\n\r\nFinal-Recipient: rfc822; anna@buyer.example\r\nAction: failed\r\n"
        b"Status: 5.1.1\r\n\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        b"From: rep@seller.example\r\nMessage-ID: <s1@seller>\r\n\r\n--B--\r\n"
    )
    read = with_body(m, text, REP, keep_text=False)
    assert read.classification.kind.value == "bounce"
    assert read.details is not None and read.details["bounce_recipient"] == "anna@buyer.example"
    assert "<s1@seller>" in read.links.references
    assert not wants_body(read)  # read once: never again


def test_a_delay_notice_gone_before_its_body_was_read_keeps_its_subkind() -> None:
    """Expunged between the two FETCHes: judged by its header for good, and what the header
    said (a delay notice, which the rules ignore) is stored with it, not lost."""
    from app.mail.sync import MailboxRef, SyncOptions, _read_body
    from app.storage.stored_messages import MessageToRead

    raw = header(
        "From: MAILER-DAEMON@mx.buyer.example",
        "To: rep@seller.example",
        "Message-ID: <d@mx>",
        "Subject: Delayed Mail (still being retried)",
    )
    m = prepare_message(raw, identity=REP, fallback_date=WHEN)
    f = m.facts
    row = MessageToRead(
        id=1,
        thread_id=1,
        message_key=m.links.key,
        has_message_id=True,
        in_reply_to=list(f.in_reply_to),
        references=list(f.references),
        subject=f.subject,
        from_addr=f.from_.normalized if f.from_ else "",
        from_name="",
        to_addrs=[a.normalized for a in f.to],
        cc_addrs=[],
        date=f.date,
        signals=dict(f.signals),
        defects=[],
        orphan_subject=None,
        folder_name="INBOX",
        uid=7,
    )
    mailbox = MailboxRef(id=1, user_id=1, identity=REP)
    verdict, details, _ = _read_body(row, None, mailbox, SyncOptions(since=None, now=WHEN))
    assert verdict.kind.value == "bounce" and verdict.bounce_hard is False
    assert details["subkind"] == "delay_notice" and details["body_read"] is False
