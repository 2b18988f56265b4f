"""Table tests: every classification rule on hand-written, real-looking messages."""

import pytest

from app.domain.body import extract_body
from app.domain.classify import classify
from app.domain.headers import parse_header_bytes
from app.domain.model import MessageKind
from tests.unit.domain.mailcases import CASES, REP, MailCase


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(case: MailCase) -> None:
    result = classify(parse_header_bytes(case.raw), REP, extract_body(case.raw))
    assert (result.kind, result.subkind) == (case.kind, case.subkind), result.reason
    assert case.reason_part.lower() in result.reason.lower()
    assert result.return_date == case.return_date, result.reason
    assert result.decline is case.decline, result.reason
    if case.bounce_recipient is not None:
        assert result.bounce_recipient == case.bounce_recipient
    if case.bounce_hard is not None:
        assert result.bounce_hard is case.bounce_hard
    if case.replacement_contact is not None:
        assert result.replacement_contact == case.replacement_contact
    if case.returned_message_id is not None:
        assert case.returned_message_id in result.returned_message_ids
    if case.human:
        assert result.kind not in {MessageKind.AUTO_REPLY, MessageKind.BOUNCE}


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_header_only_verdict_never_contradicts_a_machine_verdict(case: MailCase) -> None:
    """Without the body (body=None) a machine message may lose detail, never become a reply."""
    result = classify(parse_header_bytes(case.raw), REP)
    if case.kind in {MessageKind.AUTO_REPLY, MessageKind.BOUNCE} and case.reason_part != "the text":
        assert result.kind is not MessageKind.REPLY, result.reason
    if case.human:
        assert result.kind not in {MessageKind.AUTO_REPLY, MessageKind.BOUNCE}
