from datetime import UTC, datetime

import pytest

from app.domain.classify import classify
from app.domain.model import Address, HeaderFacts, Identity, MessageKind

REP = Identity.from_addresses(["rep@seller.com", "rep.alias@seller.com"])


def facts(
    sender: str,
    to: tuple[str, ...] = ("rep@seller.com",),
    subject: str = "Re: offer",
    **signals: str,
) -> HeaderFacts:
    return HeaderFacts(
        message_id="<m@x>",
        subject=subject,
        from_=Address(email=sender),
        to=tuple(Address(email=a) for a in to),
        date=datetime(2026, 11, 2, tzinfo=UTC),
        signals={k.replace("_", "-"): v for k, v in signals.items()},
    )


@pytest.mark.parametrize(
    ("message", "kind", "reason_part"),
    [
        (facts("rep@seller.com", to=("anna@buyer.org",)), MessageKind.OUTBOUND, "your addresses"),
        (facts("REP+crm@Seller.com", to=("anna@buyer.org",)), MessageKind.OUTBOUND, "rep"),
        (facts("rep@seller.com", to=("colleague@seller.com",)), MessageKind.INTERNAL, "own"),
        (facts("colleague@seller.com"), MessageKind.INTERNAL, "every participant"),
        (facts("anna@buyer.org"), MessageKind.REPLY, "anna@buyer.org"),
        (
            facts("anna@buyer.org", auto_submitted="auto-replied"),
            MessageKind.AUTO_REPLY,
            "Auto-Submitted",
        ),
        (facts("anna@buyer.org", auto_submitted="no"), MessageKind.REPLY, "external"),
        (
            facts(
                "anna@buyer.org",
                subject="Automatic reply: offer",
                x_ms_exchange_inbox_rules_loop="anna@buyer.org",
                x_auto_response_suppress="All",
            ),
            MessageKind.AUTO_REPLY,
            "Exchange",
        ),
        # X-Auto-Response-Suppress alone is ordinary Outlook mail, not an auto-reply.
        (facts("anna@buyer.org", x_auto_response_suppress="All"), MessageKind.REPLY, "external"),
        (
            facts("MAILER-DAEMON@mx.buyer.org", subject="Undelivered Mail Returned to Sender"),
            MessageKind.BOUNCE,
            "mailer-daemon",
        ),
        (
            facts(
                "anna@buyer.org",
                content_type='multipart/report; report-type="delivery-status"; boundary=x',
            ),
            MessageKind.BOUNCE,
            "delivery-status",
        ),
        (facts("news@buyer.org", list_id="<news.buyer.org>"), MessageKind.BULK, "List-Id"),
        (facts("news@buyer.org", precedence="bulk"), MessageKind.BULK, "Precedence"),
    ],
)
def test_kinds(message: HeaderFacts, kind: MessageKind, reason_part: str) -> None:
    result = classify(message, REP)
    assert result.kind is kind
    assert reason_part.lower() in result.reason.lower()


def test_freemail_domain_does_not_make_strangers_colleagues() -> None:
    rep = Identity.from_addresses(["rep@gmail.com"])
    stranger = facts("anna@gmail.com", to=("rep@gmail.com",))
    assert classify(stranger, rep).kind is MessageKind.REPLY


def test_header_only_signature_still_works() -> None:
    result = classify(facts("anna@buyer.org"), REP, None)
    assert result.kind is MessageKind.REPLY
    assert result.subkind is None and result.return_date is None and not result.decline
