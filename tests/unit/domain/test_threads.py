from app.domain.headers import parse_header_bytes
from app.domain.threads import base_subject, synthetic_message_key, thread_links


def test_links_cover_references_and_in_reply_to_without_self() -> None:
    facts = parse_header_bytes(
        b"Message-ID: <c@x>\r\nReferences: <a@x> <b@x> <c@x>\r\nIn-Reply-To: <b@x>\r\n\r\n"
    )
    links = thread_links(facts, fallback_key="<unused@x>")
    assert links.key == "<c@x>"
    assert links.references == ("<a@x>", "<b@x>")


def test_synthetic_key_is_stable_and_distinct() -> None:
    a = synthetic_message_key(b"Subject: one\r\n\r\n")
    assert a == synthetic_message_key(b"Subject: one\r\n\r\n")
    assert a != synthetic_message_key(b"Subject: two\r\n\r\n")
    facts = parse_header_bytes(b"Subject: one\r\n\r\n")
    assert thread_links(facts, fallback_key=a).key == a


def test_base_subject_strips_prefixes_in_many_languages() -> None:
    assert base_subject("Re: AW: Fwd: [EXT] Quick question") == "Quick question"
    assert base_subject("RE[2]: SV: Offer") == "Offer"
    assert base_subject("回复: 报价") == "报价"
    assert base_subject("Reply all the things") == "Reply all the things"
