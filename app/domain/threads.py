"""Grouping messages into conversations.

A message links to its thread through its own key and every Message-ID it references
(References, then In-Reply-To). Storage keeps a key -> thread map and merges threads when one
message links two of them, so the grouping does not depend on the order mail arrives in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.model import FREEMAIL_DOMAINS, HeaderFacts, cheap_init

SYNTHETIC_DOMAIN = "synthetic.radiosilence.invalid"
THREAD_INDEX_DOMAIN = "thread-index.radiosilence.invalid"

# A reply/forward prefix in one of many languages, numbered or not: "Re:", "AW:", "Fwd[2]:".
_REPLY_PREFIX = (
    r"(?:re|fwd?|aw|wg|sv|vs|antw|rif|r|tr|réf|ref|回复|答复|转发)"
    r"(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：]\s*"
)
_PREFIX_RE = re.compile(rf"^\s*{_REPLY_PREFIX}", re.IGNORECASE)
# Prefixes and bracketed tags, repeated: "Re: AW: [EXT] Fwd: …".
_PREFIX_OR_TAG_RE = re.compile(rf"^\s*(?:{_REPLY_PREFIX}|\[[^\]]{{1,30}}\]\s*)", re.IGNORECASE)


@cheap_init
@dataclass(frozen=True, kw_only=True)
class ThreadLinks:
    key: str  # the message's own key: its Message-ID, or a synthetic one
    references: tuple[str, ...]  # the keys it points to, nearest parent last


def synthetic_message_key(raw_header: bytes) -> str:
    """A stable key for a message without a usable Message-ID: a hash of its header bytes."""
    digest = hashlib.sha256(raw_header).hexdigest()[:32]
    return f"<{digest}@{SYNTHETIC_DOMAIN}>"


def is_synthetic_key(key: str) -> bool:
    """A stand-in key of a message that had no usable Message-ID (`synthetic_message_key`)."""
    return key.endswith(f"@{SYNTHETIC_DOMAIN}>")


def thread_links(facts: HeaderFacts, *, fallback_key: str) -> ThreadLinks:
    """The keys that tie this message to others; a self-reference is dropped (loops are junk).

    Outlook's Thread-Index adds one key shared by its whole conversation, so a reply whose
    References a gateway stripped still finds its thread.
    """
    key = facts.message_id or fallback_key
    if not (facts.references or facts.in_reply_to or facts.signals.get("thread-index")):
        return ThreadLinks(key=key, references=())  # a first message: most of a mailbox
    refs: dict[str, None] = {}
    for ref in (*facts.references, *facts.in_reply_to):
        if ref != key:
            refs.setdefault(ref, None)
    conversation = thread_index_key(facts.signals.get("thread-index", ""))
    if conversation is not None:
        refs.setdefault(conversation, None)
    return ThreadLinks(key=key, references=tuple(refs))


def thread_index_key(value: str) -> str | None:
    """The pseudo Message-ID of an Outlook conversation, from its Thread-Index header."""
    guid = thread_index_guid(value) if value else None
    return f"<{guid}@{THREAD_INDEX_DOMAIN}>" if guid else None


def base_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and tags, whitespace folded."""
    return _strip_leading(_PREFIX_OR_TAG_RE, subject).strip()


def strip_reply_prefixes(subject: str) -> str:
    """The subject without stacked reply/forward prefixes, whitespace folded. Bracketed tags
    such as "[EXT]" stay: they are part of the subject the other side sees."""
    return _strip_leading(_PREFIX_RE, subject)


def _strip_leading(pattern: re.Pattern[str], subject: str) -> str:
    previous = None
    text = " ".join(subject.split())
    while previous != text:
        previous = text
        text = pattern.sub("", text, count=1)
    return text


def decode_thread_index(value: str) -> bytes | None:
    """Thread-Index bytes: a 22-byte header block plus 5 bytes per reply level, else None."""
    try:
        raw = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) < 22 or (len(raw) - 22) % 5 != 0:
        return None
    return raw


def thread_index_guid(value: str) -> str | None:
    """The conversation GUID in Outlook's Thread-Index ([MS-OXOMSG] §2.2.1.3), or None.

    The header is base64 of a 22-byte block (a reserved byte, a 5-byte FILETIME, the 16-byte
    GUID) plus 5 bytes per reply level; every message of one Outlook conversation shares it.
    """
    raw = decode_thread_index(value)
    if raw is None:
        return None
    guid = raw[6:22]
    if not any(guid):
        return None
    return str(uuid.UUID(bytes=guid))


# Subjects too common in sales mail to tie two messages together on their own.
GENERIC_SUBJECTS = frozenset(
    {
        "",
        "hi",
        "hello",
        "hey",
        "hallo",
        "bonjour",
        "hola",
        "question",
        "quick question",
        "a quick question",
        "one quick question",
        "following up",
        "follow up",
        "follow-up",
        "checking in",
        "just checking in",
        "touching base",
        "intro",
        "introduction",
        "meeting",
        "call",
        "quick call",
        "catch up",
        "thanks",
        "thank you",
        "update",
        "info",
        "information",
        "proposal",
        "offer",
        "pricing",
        "demo",
        "next steps",
        "your inquiry",
        "request",
        "no subject",
        "(no subject)",
        "test",
    }
)
SUBJECT_FALLBACK_WINDOW = timedelta(days=30)


@dataclass(frozen=True, kw_only=True)
class SubjectCandidate:
    """A thread a header-less message might belong to, as the subject fallback sees it."""

    base_subject: str  # `base_subject()` of the thread's subject
    participants: frozenset[str]  # normalized addresses of everyone in the thread
    first_date: datetime
    last_date: datetime


@dataclass(frozen=True, kw_only=True)
class SubjectMatch:
    matched: bool
    reason: str
    confidence: str | None = None  # "low" when matched: a subject match is a guess


def subject_fallback_match(
    facts: HeaderFacts,
    candidate: SubjectCandidate,
    *,
    window: timedelta = SUBJECT_FALLBACK_WINDOW,
    own_domains: frozenset[str] = frozenset(),
) -> SubjectMatch:
    """May a message whose client broke the headers join `candidate` by its subject?

    All must hold: no References/In-Reply-To at all, the same non-generic base subject, a
    sender who is a participant (or shares a non-free-mail domain with one) and a date within
    `window` of the thread. Two different "Quick question" threads never merge.
    """
    if facts.references or facts.in_reply_to:
        return SubjectMatch(matched=False, reason="has References/In-Reply-To: threaded by them")
    subject = _fold(base_subject(facts.subject))
    if subject in GENERIC_SUBJECTS or len(subject) < 4:
        return SubjectMatch(matched=False, reason=f"subject {subject!r} is too generic to match")
    if subject != _fold(candidate.base_subject):
        return SubjectMatch(matched=False, reason="different subject")
    sender = facts.from_.normalized if facts.from_ else ""
    if not sender:
        return SubjectMatch(matched=False, reason="no sender address")
    domain = sender.rpartition("@")[2]
    if sender in candidate.participants:
        who = f"sender {sender} is in the thread"
    elif domain not in FREEMAIL_DOMAINS | own_domains and any(
        p.rpartition("@")[2] == domain for p in candidate.participants
    ):
        who = f"sender {sender} shares the domain {domain} with the thread"
    else:
        return SubjectMatch(matched=False, reason=f"sender {sender} is not in the thread")
    if facts.date is None:
        return SubjectMatch(matched=False, reason="no date to check the time window")
    if not (candidate.first_date - timedelta(days=1) <= facts.date <= candidate.last_date + window):
        return SubjectMatch(matched=False, reason=f"outside {window.days} days of the thread")
    return SubjectMatch(
        matched=True,
        reason=f"subject fallback: same subject {base_subject(facts.subject)!r}, {who}, "
        f"within {window.days} days (no References/In-Reply-To)",
        confidence="low",
    )


_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:\[[^\]]{1,30}\]\s*)*(?:re|fwd?|aw|wg|sv|vs|antw|rif|r|tr|réf|ref|回复|答复|转发)"
    r"(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：]",
    re.IGNORECASE,
)


def orphan_subject_key(facts: HeaderFacts) -> str | None:
    """The folded subject by which a message may later join a thread, or None.

    Only an answer that lost its threading headers qualifies: no References or In-Reply-To,
    a reply/forward prefix ("Re:", "AW:", "回复:") and a subject specific enough to match.
    A message that starts a conversation never goes looking for one.
    """
    if facts.references or facts.in_reply_to or not _REPLY_PREFIX_RE.match(facts.subject):
        return None
    key = subject_key(facts.subject)
    return None if key in GENERIC_SUBJECTS or len(key) < 4 else key


def subject_key(subject: str) -> str:
    """A subject as the fallback compares it: no prefixes, case and spacing folded."""
    return _fold(base_subject(subject))[:255]


def group_threads(links: Iterable[ThreadLinks]) -> dict[str, str]:
    """Every key -> its thread's id (the smallest key of its group), whatever the order.

    The in-memory twin of what storage does with its key -> thread map: a union-find over each
    message's key and the keys it references, so phantoms (referenced, never seen) join too.
    """
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        root = parent.setdefault(key, key)
        while root != parent[root]:
            root = parent[root]
        while key != root:  # path compression keeps long chains cheap
            parent[key], key = root, parent[key]
        return root

    for link in links:
        root = find(link.key)
        for ref in link.references:
            other = find(ref)
            if other != root:
                low, high = (root, other) if root < other else (other, root)
                parent[high] = low
                root = low
    return {key: find(key) for key in parent}


def _fold(subject: str) -> str:
    return " ".join(subject.casefold().split()).strip(" .!?")
