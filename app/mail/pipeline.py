"""Raw bytes -> a message ready to store, and a stored message read again with its body.
Shared by IMAP sync (in its reader process too: no database here, see `mail.storing`) and
file import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from app.domain.body import extract_body
from app.domain.bulk import worth_reading
from app.domain.classify import classify
from app.domain.headers import parse_header_bytes
from app.domain.incoming import NewMessage
from app.domain.model import (
    Classification,
    HeaderFacts,
    Identity,
    MessageKind,
)
from app.domain.threads import (
    ThreadLinks,
    synthetic_message_key,
    thread_links,
)
from app.storage.stored_messages import StoredHeader

TEXT_PREFIX_KEEP = 2000  # characters kept when the operator asks to keep text prefixes


def prepare_message(
    raw_header: bytes,
    *,
    identity: Identity,
    fallback_date: datetime | Callable[[], datetime],
    folder_id: int | None = None,
    uid: int | None = None,
    uidvalidity: int | None = None,
    gm_msgid: int | None = None,
    gm_thrid: int | None = None,
    raw_message: bytes | None = None,
) -> NewMessage:
    """Parse, link and classify one message. With `raw_message` (an import has the whole
    message) the body is read at once; IMAP sync reads bodies later, only where they matter."""
    facts = parse_header_bytes(raw_header)
    if facts.message_id is None and facts.from_ is None and facts.date is None:
        # No Message-ID, no sender, no date: nothing to thread or decide on. Recorded, skipped.
        detail = "; ".join(facts.defects[:3]) or "empty header"
        raise ValueError(f"not an e-mail: no Message-ID, From or Date ({detail})")
    # The header hash is only needed for a message without a usable Message-ID.
    fallback_key = synthetic_message_key(raw_header) if facts.message_id is None else ""
    links = thread_links(facts, fallback_key=fallback_key)
    details: dict[str, Any] | None = None
    if raw_message is not None:
        classification, details, _ = read_body(facts, identity, raw_message, keep_text=False)
        links = with_returned_ids(links, classification)
    else:
        classification = classify(facts, identity)
    return NewMessage(
        facts=facts,
        links=links,
        classification=classification,
        date=facts.date or (fallback_date() if callable(fallback_date) else fallback_date),
        folder_id=folder_id,
        uid=uid,
        uidvalidity=uidvalidity,
        gm_msgid=gm_msgid,
        gm_thrid=gm_thrid,
        details=details,
    )


def read_body(
    facts: HeaderFacts, identity: Identity, raw: bytes, *, keep_text: bool
) -> tuple[Classification, dict[str, Any], str | None]:
    """Classify a message with the start of its body: its kind, the facts to store, and the
    text prefix when the operator keeps one."""
    body = extract_body(raw)
    classification = classify(facts, identity, body)
    kept = body.text[:TEXT_PREFIX_KEEP] if keep_text else None
    return classification, classification_details(classification), kept


# Kinds whose verdict the start of the body can change or complete (auto-reply wording and
# return dates, bounce reports, declines, quote-only "replies").
BODY_KINDS = frozenset({MessageKind.REPLY, MessageKind.AUTO_REPLY, MessageKind.BOUNCE})


def wants_body(m: NewMessage) -> bool:
    """Read during the header pass: machine answers, human mail that answers something (it
    has threading keys), and mail with one weak sign of a mass mailing (its footer may make
    it bulk, not a stranger waiting for an answer). The rest waits for the after-pass, which
    reads a body only once its message turns out to answer the rep (an orphan that found its
    thread by subject)."""
    kind = m.classification.kind
    if kind not in BODY_KINDS or m.details is not None:
        return False
    if kind is not MessageKind.REPLY or m.links.references:
        return True
    sender = m.facts.from_.normalized if m.facts.from_ else ""
    return worth_reading(m.facts, sender)


def with_body(m: NewMessage, text: bytes, identity: Identity, *, keep_text: bool) -> NewMessage:
    """A message prepared from its header, classified again with the start of its body (the
    TEXT section, after the header the decisions read); a bounce gains the returned ids."""
    classification, details, kept = read_body(
        m.facts, identity, mime_head(m.facts.signals) + text, keep_text=keep_text
    )
    return replace(
        m,
        classification=classification,
        links=with_returned_ids(m.links, classification),
        details=details,
        text_prefix=kept,
    )


def with_returned_ids(links: ThreadLinks, classification: Classification) -> ThreadLinks:
    """A bounce joins the thread of the message it returns."""
    extra = [i for i in classification.returned_message_ids if i not in links.references]
    extra = [i for i in extra if i != links.key]
    if not extra:
        return links
    return ThreadLinks(key=links.key, references=(*links.references, *extra))


def classification_details(c: Classification) -> dict[str, Any]:
    """What a body reading found, as stored in `messages.details` (JSON)."""
    return {
        "body_read": True,
        "subkind": c.subkind.value if c.subkind else None,
        "return_date": c.return_date.isoformat() if c.return_date else None,
        "bounce_recipient": c.bounce_recipient,
        "bounce_hard": c.bounce_hard,
        "decline": c.decline,
        "replacement_contact": c.replacement_contact,
        "returned_message_ids": list(c.returned_message_ids),
    }


def body_bytes(row: StoredHeader, text: bytes) -> bytes:
    """The start of a message rebuilt from its stored MIME headers and its fetched TEXT."""
    return mime_head(row.signals) + text


def mime_head(signals: dict[str, str]) -> bytes:
    """The MIME header fields a body parser needs, from the header fields we keep."""
    head = "".join(
        f"{name}: {signals[name]}\r\n"
        for name in ("content-type", "content-transfer-encoding")
        if name in signals
    )
    return head.encode("utf-8", "replace") + b"MIME-Version: 1.0\r\n\r\n"
