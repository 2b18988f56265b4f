"""Raw header bytes -> HeaderFacts. The fast path: compat32 parsing, tolerant of any junk.

`email.policy.default` is about ten times slower than compat32 on header sets, so we parse with
compat32 and decode only the few fields we use. Nothing here raises on bad input: problems are
collected in `HeaderFacts.defects`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from email.message import Message
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
    "CONTENT-TRANSFER-ENCODING",
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

_SURROGATE_RE = re.compile("[\udc80-\udcff]")
# One address per match: commas inside "quoted, names" do not split.
_QUOTE_AWARE_COMMA_RE = re.compile(r'(?:"[^"]*"|[^,"])+')
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_DATE_RE = re.compile(
    r"^\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+"
    r"(\d{1,2}):(\d{2})(?::(\d{2}))?\s+([+-])(\d{2})(\d{2})(?:\s|$)"
)
_ADDR_RE = re.compile(r"^\s*(.*?)\s*<([^<>]*)>\s*$")


def parse_header_bytes(raw: bytes) -> HeaderFacts:
    """Parse a header block (or a whole message: only its header is read).

    A hand-rolled unfolding loop: `email.parser` costs ten times more per message and the
    sync reads hundreds of thousands of header blocks.
    """
    fields: dict[str, list[str]] = {}
    defects: list[str] = []
    name: str | None = None
    for line in decode_raw_header(raw).splitlines():
        if not line.strip():
            if fields or name is not None:
                break  # the blank line that ends the header
            continue
        if line[0] in " \t":  # a folded continuation of the previous field
            if name is not None:
                fields[name][-1] += line
            continue
        field, sep, value = line.partition(":")
        if not sep or not field.strip() or " " in field.strip():
            if len(defects) < 5:
                defects.append(f"not a header line: {line[:60]!r}")
            name = None
            continue
        name = field.strip().lower()
        fields.setdefault(name, []).append(value)
    return facts_from_fields(fields, defects)


def facts_from_message(msg: Message) -> HeaderFacts:
    """Extract the facts from an already parsed message (the mbox/Maildir import path)."""
    fields: dict[str, list[str]] = {}
    for name, value in msg.items():
        fields.setdefault(name.lower(), []).append(str(value))
    return facts_from_fields(fields, [])


def facts_from_fields(fields: dict[str, list[str]], defects: list[str]) -> HeaderFacts:
    def first(name: str) -> str:
        values = fields.get(name)
        return values[0][:MAX_FIELD_CHARS].strip() if values else ""

    def every(name: str) -> list[str]:
        return [v[:MAX_FIELD_CHARS] for v in fields.get(name, ())]

    message_ids = extract_message_ids(first("message-id"))
    if not message_ids:
        defects.append("no usable Message-ID")
    signals = {}
    for name in SIGNAL_FIELDS.intersection(fields):
        value = first(name)
        if value:
            signals[name] = decode_words(value)
    subject = first("subject")
    return HeaderFacts(
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=tuple(extract_message_ids(first("in-reply-to"))),
        references=tuple(extract_message_ids(first("references"))[-MAX_REFERENCES:]),
        subject=" ".join(decode_words(subject).split()) if subject else "",
        from_=next(iter(parse_addresses(every("from"))), None),
        to=parse_addresses(every("to")),
        cc=parse_addresses(every("cc")),
        date=parse_date(first("date"), defects),
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
    out: list[Address] = []
    for value in values:
        if "(" in value or ";" in value or "\\" in value:
            pairs = getaddresses([_repair_8bit(value)])  # comments, groups, escapes: rare
        elif '"' in value:
            pairs = [_split_address(part) for part in _QUOTE_AWARE_COMMA_RE.findall(value)]
        else:
            pairs = [_split_address(part) for part in value.split(",")]
        for name, email in pairs:
            email = email.strip()
            if "@" not in email or " " in email:
                continue
            out.append(Address(email=email, name=decode_words(name).strip() if name else ""))
    return tuple(out)


def _split_address(part: str) -> tuple[str, str]:
    match = _ADDR_RE.match(part)
    if match:
        name = match.group(1)
        if len(name) > 1 and name[0] == '"' and name[-1] == '"':
            name = name[1:-1]
        return name, match.group(2)
    return "", part.strip()


def parse_date(value: str, defects: list[str]) -> datetime | None:
    if not value:
        defects.append("no Date header")
        return None
    match = _DATE_RE.match(value)
    if match is not None:  # the common form, "Mon, 16 Nov 2026 10:15:00 +0100", read directly
        day, month, year, hh, mm, ss, sign, oh, om = match.groups()
        month_no = _MONTHS.get(month.lower())
        if month_no is not None:
            offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == "-" else 1)
            try:
                local = datetime(int(year), month_no, int(day), int(hh), int(mm), int(ss or 0))
            except ValueError:
                local = None
            if local is not None:
                return (local - offset).replace(tzinfo=UTC)
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
    if _SURROGATE_RE.search(value) is None:
        return value
    raw = value.encode("ascii", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
