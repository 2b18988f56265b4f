import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.headers import parse_header_bytes
from app.domain.model import Address, HeaderFacts
from app.domain.threads import (
    SubjectCandidate,
    ThreadLinks,
    base_subject,
    group_threads,
    orphan_subject_key,
    strip_reply_prefixes,
    subject_fallback_match,
    synthetic_message_key,
    thread_index_guid,
    thread_index_key,
    thread_links,
)


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


def test_strip_reply_prefixes_keeps_bracketed_tags() -> None:
    assert strip_reply_prefixes("Re: AW: Fwd[2]:  Offer") == "Offer"
    assert strip_reply_prefixes("Re: [EXT] Re: Offer") == "[EXT] Re: Offer"
    assert base_subject("Re: [EXT] Re: Offer") == "Offer"


def test_base_subject_strips_prefixes_in_many_languages() -> None:
    assert base_subject("Re: AW: Fwd: [EXT] Quick question") == "Quick question"
    assert base_subject("RE[2]: SV: Offer") == "Offer"
    assert base_subject("回复: 报价") == "报价"
    assert base_subject("Reply all the things") == "Reply all the things"


# --- Outlook Thread-Index, subject fallback, grouping ---------------------------------------


GUID = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")


def _thread_index(children: int) -> str:
    raw = b"\x01" + b"\x01\xd6\x0d\x53\x76" + GUID.bytes + b"\x00\x00\x10\x20\x30" * children
    return base64.b64encode(raw).decode()


def test_thread_index_guid_is_shared_by_a_conversation() -> None:
    assert thread_index_guid(_thread_index(0)) == str(GUID)
    assert thread_index_guid(_thread_index(3)) == str(GUID)
    assert thread_index_guid("not base64 !!") is None
    assert thread_index_guid(base64.b64encode(b"short").decode()) is None


SENT = datetime(2026, 3, 2, 14, tzinfo=UTC)
CANDIDATE = SubjectCandidate(
    base_subject="Offer for 40 seats",
    participants=frozenset({"rep@seller.com", "anna@buyer.org"}),
    first_date=SENT,
    last_date=SENT,
)


def _facts(
    subject: str, sender: str = "anna@buyer.org", days: int = 2, **kw: object
) -> HeaderFacts:
    return HeaderFacts(
        message_id="<x@buyer.org>",
        subject=subject,
        from_=Address(email=sender),
        date=SENT + timedelta(days=days),
        **kw,  # type: ignore[arg-type]
    )


def test_subject_fallback_joins_a_broken_reply_with_low_confidence() -> None:
    match = subject_fallback_match(_facts("AW: Offer for 40 seats"), CANDIDATE)
    assert match.matched and match.confidence == "low"
    assert "subject fallback" in match.reason
    colleague = subject_fallback_match(_facts("RE: offer for 40 seats", "ben@buyer.org"), CANDIDATE)
    assert colleague.matched and "shares the domain" in colleague.reason


@pytest.mark.parametrize(
    ("facts", "why"),
    [
        (_facts("Re: Quick question"), "generic"),
        (_facts("Re: Another offer"), "different"),
        (_facts("Re: Offer for 40 seats", "joe@gmail.com"), "not in the thread"),
        (_facts("Re: Offer for 40 seats", days=45), "outside"),
        (_facts("Re: Offer for 40 seats", in_reply_to=("<y@x>",)), "In-Reply-To"),
    ],
)
def test_subject_fallback_refuses(facts: HeaderFacts, why: str) -> None:
    match = subject_fallback_match(facts, CANDIDATE)
    assert not match.matched and why in match.reason and match.confidence is None


def test_two_quick_question_threads_never_merge() -> None:
    quick = SubjectCandidate(
        base_subject="Quick question",
        participants=frozenset({"anna@buyer.org"}),
        first_date=SENT,
        last_date=SENT,
    )
    assert not subject_fallback_match(_facts("Re: Quick question"), quick).matched


LINKS = [
    ThreadLinks(key="<a@x>", references=()),
    ThreadLinks(key="<b@x>", references=("<a@x>",)),
    ThreadLinks(key="<c@x>", references=("<a@x>", "<b@x>")),
    ThreadLinks(key="<d@x>", references=("<phantom@x>",)),
    ThreadLinks(key="<e@x>", references=("<phantom@x>", "<e@x>")),  # self-reference
    ThreadLinks(key="<f@x>", references=("<g@x>",)),
    ThreadLinks(key="<g@x>", references=("<f@x>",)),  # a reference loop
    ThreadLinks(key="<h@x>", references=()),
]


@given(st.permutations(LINKS))
def test_threads_do_not_depend_on_arrival_order(order: list[ThreadLinks]) -> None:
    threads = group_threads(order)
    assert threads == group_threads(LINKS)  # re-running yields the same thread ids
    assert threads["<c@x>"] == threads["<a@x>"] == "<a@x>"
    assert threads["<d@x>"] == threads["<e@x>"] == "<d@x>"
    assert threads["<f@x>"] == threads["<g@x>"]
    assert threads["<h@x>"] == "<h@x>"


def test_thread_index_becomes_a_shared_conversation_key() -> None:
    block = bytes([1]) + b"\x00\x01\x02\x03\x04" + uuid.UUID(int=7).bytes
    first = base64.b64encode(block).decode()
    reply = base64.b64encode(block + b"\x00\x00\x00\x00\x01").decode()
    a = thread_links(
        HeaderFacts(message_id="<a@x>", signals={"thread-index": first}), fallback_key="<f>"
    )
    b = thread_links(
        HeaderFacts(message_id="<b@y>", signals={"thread-index": reply}), fallback_key="<f>"
    )
    assert a.references == b.references == (thread_index_key(first),)
    assert thread_index_key("not base64 at all!") is None
    assert thread_links(HeaderFacts(message_id="<c@z>"), fallback_key="<f>").references == ()


@pytest.mark.parametrize(
    ("subject", "refs", "key"),
    [
        ("AW: [EXT] Re: Rollout plan for ACME", (), "rollout plan for acme"),
        ("回复: 报价单 ACME", (), "报价单 acme"),
        ("SV:Pilot scope", (), "pilot scope"),
        ("Rollout plan for ACME", (), None),  # starts a conversation: never looks for one
        ("Re: Quick question", (), None),  # too generic to match anything safely
        ("Re: Rollout plan for ACME", ("<p@x>",), None),  # threaded by its headers
    ],
)
def test_only_answers_that_lost_their_headers_look_for_a_thread_by_subject(
    subject: str, refs: tuple[str, ...], key: str | None
) -> None:
    facts = HeaderFacts(message_id="<m@x>", subject=subject, references=refs)
    assert orphan_subject_key(facts) == key
