"""Raw header bytes -> HeaderFacts. The fast path: compat32 parsing, tolerant of any junk.

`email.policy.default` is about ten times slower than compat32 on header sets, so we parse with
compat32 and decode only the few fields we use. Nothing here raises on bad input: problems are
collected in `HeaderFacts.defects`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from email.utils import getaddresses, parsedate_to_datetime

from app.domain.model import Address, HeaderFacts

# The header fields the product reads; the IMAP fetch asks for exactly these.
FETCH_HEADER_FIELDS: tuple[str, ...] = (
    "MESSAGE-ID",
    "IN-REPLY-TO",
    "REFERENCES",
    "SUBJECT",
    "FROM",
    "TO",
    "CC",
    "REPLY-TO",
    "DATE",
    "THREAD-INDEX",
    "THREAD-TOPIC",
    "CONTENT-TYPE",
    "CONTENT-LANGUAGE",
    "AUTO-SUBMITTED",
    "PRECEDENCE",
    "X-AUTOREPLY",
    "X-AUTORESPOND",
    "X-AUTO-RESPONSE-SUPPRESS",
    "X-MS-EXCHANGE-INBOX-RULES-LOOP",
    "X-FAILED-RECIPIENTS",
    "RETURN-PATH",
    "LIST-ID",
    "LIST-UNSUBSCRIBE",
    "FEEDBACK-ID",
    "X-LOOP",
)

# Fields kept verbatim (decoded) for classification.
SIGNAL_FIELDS = frozenset(
    name.lower()
    for name in FETCH_HEADER_FIELDS
    if name not in {"MESSAGE-ID", "IN-REPLY-TO", "REFERENCES", "SUBJECT", "FROM", "TO", "CC"}
)

MSGID_RE = re.compile(r"<([^<>\s]+)>")
MAX_REFERENCES = 100  # a References header longer than this is junk or an attack
MAX_FIELD_CHARS = 16_384  # huge headers are cut, not fatal

_parser = HeaderParser(policy=compat32)


def parse_header_bytes(raw: bytes) -> HeaderFacts:
    """Parse a header block (or a whole message: only its header is read)."""
    defects: list[str] = []
    try:
        msg = _parser.parsestr(decode_raw_header(raw))
    except Exception as exc:  # the stdlib parser is lenient, but never let junk stop a sync
        return HeaderFacts(message_id=None, defects=(f"unparsable header: {exc}",))
    return facts_from_message(msg, defects)


def facts_from_message(msg: Message, defects: list[str] | None = None) -> HeaderFacts:
    """Extract the facts from an already parsed message (mbox/Maildir import path)."""
    defects = list(defects or [])
    message_ids = extract_message_ids(_text(msg, "message-id"))
    references = extract_message_ids(_text(msg, "references"))[-MAX_REFERENCES:]
    in_reply_to = extract_message_ids(_text(msg, "in-reply-to"))
    if not message_ids:
        defects.append("no usable Message-ID")
    signals = {}
    for name in SIGNAL_FIELDS:
        value = _text(msg, name)
        if value:
            signals[name] = decode_words(value)
    return HeaderFacts(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=tuple(in_reply_to),
        references=tuple(references),
        subject=" ".join(decode_words(_text(msg, "subject")).split()),
        from_=next(iter(parse_addresses(_all(msg, "from"))), None),
        to=parse_addresses(_all(msg, "to")),
        cc=parse_addresses(_all(msg, "cc")),
        date=parse_date(_text(msg, "date"), defects),
        signals=signals,
        defects=tuple(defects),
    )


def extract_message_ids(value: str) -> list[str]:
    """Every <id> in a header, in order, de-duplicated; tolerant of commas and comments."""
    seen: dict[str, None] = {}
    for match in MSGID_RE.finditer(value):
        seen.setdefault(f"<{match.group(1)}>", None)
    return list(seen)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words; raw 8-bit bytes are read as UTF-8, else Latin-1."""
    value = _repair_8bit(value)
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # malformed encoded-word or unknown charset: keep the raw text
        return value


def parse_addresses(values: list[str]) -> tuple[Address, ...]:
    out = []
    for name, email in getaddresses([_repair_8bit(v) for v in values]):
        email = email.strip()
        if "@" not in email:
            continue
        out.append(Address(email=email, name=decode_words(name).strip()))
    return tuple(out)


def parse_date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        defects.append("no Date header")
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        defects.append(f"unparsable Date: {value[:80]!r}")
        return None
    if parsed.tzinfo is None:  # RFC 5322 "-0000": the zone is unknown; UTC is the best guess
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def decode_raw_header(raw: bytes) -> str:
    """Header bytes to text. Raw 8-bit headers (against the RFC, but common) are read per line
    as UTF-8, else Windows-1252, so that one broken line does not garble the others."""
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        pass
    lines = []
    for line in raw.split(b"\n"):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(line.decode("cp1252", errors="replace"))
    return "\n".join(lines)


def _text(msg: Message, name: str) -> str:
    value = msg.get(name)
    if value is None:
        return ""
    return str(value)[:MAX_FIELD_CHARS]


def _all(msg: Message, name: str) -> list[str]:
    return [str(v)[:MAX_FIELD_CHARS] for v in (msg.get_all(name) or [])]


def _repair_8bit(value: str) -> str:
    """compat32 keeps raw 8-bit bytes as surrogates; turn them back into readable text."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    raw = value.encode("ascii", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
