"""Grouping messages into conversations.

A message links to its thread through its own key and every Message-ID it references
(References, then In-Reply-To). Storage keeps a key -> thread map and merges threads when one
message links two of them, so the grouping does not depend on the order mail arrives in.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from app.domain.model import HeaderFacts

SYNTHETIC_DOMAIN = "synthetic.radiosilence.invalid"

# Reply/forward prefixes in many languages, repeated or bracketed: "Re: AW: [EXT] Fwd: …".
_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|sv|vs|antw|rif|r|tr|réf|ref|回复|答复|转发)"
    r"(?:\s*\[\d+\]|\s*\(\d+\))?\s*[:：]\s*|\[[^\]]{1,30}\]\s*)",
    re.IGNORECASE,
)


@dataclass(frozen=True, kw_only=True)
class ThreadLinks:
    key: str  # the message's own key: its Message-ID, or a synthetic one
    references: tuple[str, ...]  # the keys it points to, nearest parent last


def synthetic_message_key(raw_header: bytes) -> str:
    """A stable key for a message without a usable Message-ID: a hash of its header bytes."""
    digest = hashlib.sha256(raw_header).hexdigest()[:32]
    return f"<{digest}@{SYNTHETIC_DOMAIN}>"


def thread_links(facts: HeaderFacts, *, fallback_key: str) -> ThreadLinks:
    """The keys that tie this message to others; a self-reference is dropped (loops are junk)."""
    key = facts.message_id or fallback_key
    refs: dict[str, None] = {}
    for ref in (*facts.references, *facts.in_reply_to):
        if ref != key:
            refs.setdefault(ref, None)
    return ThreadLinks(key=key, references=tuple(refs))


def base_subject(subject: str) -> str:
    """The subject without reply/forward prefixes and tags, whitespace folded."""
    previous = None
    text = " ".join(subject.split())
    while previous != text:
        previous = text
        text = _PREFIX_RE.sub("", text, count=1)
    return text.strip()
