"""What an import keeps of the rep's own e-mails: whole up to the cap, else without
attachments, else nothing."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from app.mail.files import original_to_keep


def offer(attachment_bytes: int) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "rep@seller.example"
    msg["To"] = "anna@buyer.example"
    msg["Subject"] = "Offer"
    msg["Message-ID"] = "<offer@seller.example>"
    msg.set_content("Hi Anna,\n\nthe offer is attached.\n")
    msg.add_attachment(
        b"%PDF" + b"x" * attachment_bytes, maintype="application", subtype="pdf", filename="o.pdf"
    )
    return msg.as_bytes()


def test_an_e_mail_within_the_cap_is_kept_byte_for_byte() -> None:
    raw = offer(1000)
    assert original_to_keep(raw, limit=10_000) == raw


def test_a_larger_one_is_kept_without_its_attachments() -> None:
    raw = offer(50_000)
    kept = original_to_keep(raw, limit=10_000)
    assert kept is not None and len(kept) < 10_000
    msg = message_from_bytes(kept, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    assert list(msg.iter_attachments()) == []
    body = msg.get_body(("plain",))
    assert body is not None and "the offer is attached." in body.get_content()
    assert msg["Message-ID"] == "<offer@seller.example>"


def test_one_too_large_even_without_attachments_is_not_kept() -> None:
    assert original_to_keep(offer(10), limit=100) is None
