"""Raw message bytes -> MessageBody: the body facts classification reads.

The sync fetches only the first 16 KB of an inbound message, so the input is often cut in the
middle of a part; the parser is lenient and every problem becomes a defect, never an exception.
A returned original (message/rfc822, text/rfc822-headers) is read for its Message-ID and
recipients only: its text is the rep's own mail and must not be mistaken for the sender's.
"""

from __future__ import annotations

import binascii
import re
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.policy import compat32

from app.domain.headers import EMAIL_RE, decode_words, extract_message_ids
from app.domain.htmltext import html_to_text
from app.domain.model import MessageBody, RecipientStatus

MAX_TEXT_CHARS = 8_000  # enough for any phrase a decision reads; the rest is quoted history
MAX_PARTS = 64  # a message with more parts is junk or an attack
MAX_SCAN_CHARS = 65_536  # text scanned per part for "Message-ID:" lines of a returned original

_BODY_MSGID_RE = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)
_CAL_METHOD_RE = re.compile(r"^METHOD:([A-Za-z-]+)", re.MULTILINE)
_CAL_PARTSTAT_RE = re.compile(r"PARTSTAT=([A-Za-z-]+)", re.IGNORECASE)
_REPORT_TYPES = ("delivery-status", "disposition-notification", "feedback-report")

_parser = BytesParser(policy=compat32)
_header_parser = HeaderParser(policy=compat32)


def extract_body(raw: bytes) -> MessageBody:
    """Read a whole (possibly truncated) message; never raises.

    The common answer — one text/plain part, 7bit, 8bit or quoted-printable, under a plain
    header — is read directly (`email.parser` costs several times more than the rest of the
    decision); every other message takes `extract_body_general`, which reads the common one to
    the same result.
    """
    try:
        body = _plain_text_body(raw)
    except Exception:  # whatever the short way trips on, the parser reads (and records)
        body = None
    return body if body is not None else extract_body_general(raw)


def extract_body_general(raw: bytes) -> MessageBody:
    """Read any message through `email.parser` (compat32), however broken; never raises."""
    try:
        msg = _parser.parsebytes(raw)
    except Exception as exc:  # the stdlib parser is lenient; junk must still never stop a sync
        return MessageBody(defects=(f"unparsable body: {exc}",))
    reader = _BodyReader()
    try:
        reader.read(msg)
    except Exception as exc:  # a part we could not read: keep what was read so far
        reader.defects.append(f"unreadable part: {type(exc).__name__}")
    return reader.result(msg)


class _BodyReader:
    def __init__(self) -> None:
        self.parts = 0
        self.plain: str | None = None
        self.html: str | None = None
        self.statuses: list[RecipientStatus] = []
        self.returned_ids: dict[str, None] = {}
        self.returned_to: dict[str, None] = {}
        self.disposition: str | None = None
        self.feedback = False
        self.cal_method: str | None = None
        self.cal_partstat: str | None = None
        self.report_seen: set[str] = set()
        self.defects: list[str] = []

    def read(self, part: Message) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            if self.parts == MAX_PARTS + 1:
                self.defects.append(f"more than {MAX_PARTS} parts: the rest was skipped")
            return
        ctype = part.get_content_type()
        self.defects.extend(type(d).__name__ for d in part.defects)
        if ctype == "message/delivery-status" or ctype == "message/global-delivery-status":
            self._delivery_status(part)
        elif ctype in {"message/rfc822", "message/global"}:
            self._returned(part)
        elif ctype in {"text/rfc822-headers", "text/global-headers"}:
            self._returned_headers(part)
        elif ctype == "message/disposition-notification":
            self._disposition(part)
        elif ctype == "message/feedback-report":
            self.feedback = True
        elif part.is_multipart():
            for sub in _subparts(part):
                self.read(sub)
        elif ctype in {"text/calendar", "application/ics"}:
            self._calendar(part)
        elif part.get_content_maintype() == "text":
            self._text(part, ctype)

    def _text(self, part: Message, ctype: str) -> None:
        text = _decoded_text(part, self.defects)
        for match in _BODY_MSGID_RE.finditer(text, 0, MAX_SCAN_CHARS):
            self.returned_ids.setdefault(match.group(1), None)
        if _is_attachment(part):
            return
        if ctype == "text/plain" and self.plain is None:
            self.plain = text[: MAX_TEXT_CHARS * 2]
        elif ctype == "text/html" and self.html is None:
            self.html = text[: MAX_SCAN_CHARS * 2]

    def _delivery_status(self, part: Message) -> None:
        self.report_seen.add("delivery-status")
        blocks = part.get_payload()
        if not isinstance(blocks, list):  # an unparsed status block: read it as one header
            blocks = [_header_parser.parsestr(str(blocks or ""))]
        for block in blocks:
            if not isinstance(block, Message):
                continue
            status = _recipient_status(block)
            if status is not None:
                self.statuses.append(status)

    def _returned(self, part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            self._returned_fields(inner)
        elif isinstance(payload, str):  # the stdlib leaves a cut rfc822 part as text
            self._returned_fields(_header_parser.parsestr(payload))

    def _returned_headers(self, part: Message) -> None:
        text = _decoded_text(part, self.defects)
        self._returned_fields(_header_parser.parsestr(text))

    def _returned_fields(self, inner: Message) -> None:
        for msgid in extract_message_ids(str(inner.get("message-id", ""))):
            self.returned_ids.setdefault(msgid, None)
        for name in ("to", "cc"):
            for value in inner.get_all(name) or []:
                for addr in EMAIL_RE.findall(decode_words(str(value))):
                    self.returned_to.setdefault(addr.lower(), None)

    def _disposition(self, part: Message) -> None:
        self.report_seen.add("disposition-notification")
        payload = part.get_payload()
        fields = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(fields, Message):
            self.disposition = str(fields.get("disposition", "")).strip() or "unknown"
            for msgid in extract_message_ids(str(fields.get("original-message-id", ""))):
                self.returned_ids.setdefault(msgid, None)
        else:
            self.disposition = "unknown"

    def _calendar(self, part: Message) -> None:
        text = _decoded_text(part, self.defects)
        method = part.get_param("method")
        found = _CAL_METHOD_RE.search(text)
        if isinstance(method, str) and method:
            self.cal_method = method.upper()
        elif found:
            self.cal_method = found.group(1).upper()
        partstat = _CAL_PARTSTAT_RE.search(text)
        if partstat:
            self.cal_partstat = partstat.group(1).upper()

    def result(self, msg: Message) -> MessageBody:
        report_type = str(msg.get_param("report-type") or "").strip().lower()
        if msg.get_content_type() != "multipart/report":
            report_type = next((r for r in _REPORT_TYPES if r in self.report_seen), "")
        if report_type == "" and self.feedback:
            report_type = "feedback-report"
        text, is_html = self.plain, False
        if not (text or "").strip() and self.html is not None:
            text, is_html = html_to_text(self.html), True
        return MessageBody(
            content_type=msg.get_content_type(),
            report_type=report_type,
            text=(text or "").replace("\r\n", "\n")[:MAX_TEXT_CHARS],
            text_is_html=is_html,
            delivery_status=tuple(self.statuses),
            returned_message_ids=tuple(self.returned_ids),
            returned_recipients=tuple(self.returned_to),
            disposition=self.disposition,
            feedback_report=self.feedback or report_type == "feedback-report",
            calendar_method=self.cal_method,
            calendar_partstat=self.cal_partstat,
            defects=tuple(dict.fromkeys(self.defects)),
        )


def _subparts(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


def _recipient_status(block: Message) -> RecipientStatus | None:
    final = str(block.get("final-recipient") or block.get("original-recipient") or "")
    action = str(block.get("action", "")).strip().lower()
    status = str(block.get("status", "")).strip()
    if not (final or action or status):
        return None  # the per-message block (Reporting-MTA …)
    address = final.partition(";")[2] if ";" in final else final
    found = EMAIL_RE.search(address)
    diagnostic = " ".join(str(block.get("diagnostic-code", "")).split())
    return RecipientStatus(
        recipient=found.group(0).lower() if found else address.strip(" <>").lower(),
        action=action.split()[0] if action else "",
        status=status.split()[0] if status else "",
        diagnostic=diagnostic[:300],
    )


def _is_attachment(part: Message) -> bool:
    return str(part.get("content-disposition", "")).strip().lower().startswith("attachment")


def _decoded_text(part: Message, defects: list[str]) -> str:
    """A leaf part's text: transfer encoding undone, charset applied, never raising."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # broken base64/quoted-printable in a cut message
        defects.append("undecodable transfer encoding")
        payload = None
    if not isinstance(payload, bytes):
        raw = part.get_payload()
        return raw if isinstance(raw, str) else ""
    return _text_of(payload, _charset(part), defects)


def _text_of(payload: bytes, charset: str, defects: list[str]) -> str:
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except LookupError:  # an unknown charset name
            defects.append(f"unknown charset {charset[:40]!r}")
        except UnicodeDecodeError:  # mislabelled 8-bit text, common in the wild
            continue
    return payload.decode("cp1252", errors="replace")


def _charset(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except Exception:  # an RFC 2231 parameter the stdlib cannot read
        return "utf-8"
    return charset or "utf-8"


# The header of a message `_plain_text_body` reads itself: CRLF lines of printable ASCII, each
# "Name: value" (the names `email.feedparser` takes), none folded, then an empty line.
_PLAIN_HEAD_BYTES = bytes([9, 10, 13, *range(32, 127)])
_HEAD_LINE_RE = re.compile(r"[!-9;-~]+:[\t -~]*")
# text/plain with simple parameters only (tokens or quoted text without ";" and "\\"), as
# `email.message` reads them; RFC 2231 ("name*=") is left to it.
_TOKEN = r"[!#$%&'+\-.0-9A-Z^_`a-z{|}~]"
_PLAIN_TYPE_RE = re.compile(
    rf'[ \t]*text/plain[ \t]*(?:;[ \t]*{_TOKEN}+[ \t]*=[ \t]*(?:"[^"\\;]*"|{_TOKEN}*)[ \t]*)*'
    r"(?:;[ \t]*)?",
    re.IGNORECASE,
)
_CHARSET_RE = re.compile(rf';[ \t]*charset[ \t]*=[ \t]*(?:"([^"]*)"|({_TOKEN}*))', re.IGNORECASE)
_PLAIN_ENCODINGS = frozenset({"", "7bit", "8bit", "binary", "quoted-printable"})


def _plain_text_body(raw: bytes) -> MessageBody | None:
    """A single text/plain part under a plain header, read as `extract_body_general` reads
    it; None for anything else."""
    end = raw.find(b"\r\n\r\n")
    if end <= 0:
        return None
    head = raw[:end]
    if head.translate(None, _PLAIN_HEAD_BYTES) or head.count(b"\n") != head.count(b"\r\n"):
        return None
    if head.count(b"\r") != head.count(b"\r\n"):
        return None
    fields: dict[str, str] = {}
    for line in head.decode("ascii").split("\r\n"):
        if not _HEAD_LINE_RE.fullmatch(line):
            return None  # a folded or junk line: the parser decides what it means
        name, _, value = line.partition(":")
        name = name.lower()
        if name in fields:
            if name.startswith("content-"):
                return None  # which one counts is the parser's business
            continue
        fields[name] = value.lstrip(" \t")
    content_type = fields.get("content-type")
    charset = "utf-8"
    if content_type is not None:
        if not _PLAIN_TYPE_RE.fullmatch(content_type):
            return None
        found = _CHARSET_RE.search(content_type)
        if found is not None:
            charset = (found.group(1) if found.group(1) is not None else found.group(2)).lower()
            charset = charset or "utf-8"
    encoding = fields.get("content-transfer-encoding", "").lower()
    if encoding not in _PLAIN_ENCODINGS:
        return None
    payload = raw[end + 4 :]
    if encoding == "quoted-printable":
        payload = binascii.a2b_qp(payload)
    defects: list[str] = []
    text = _text_of(payload, charset, defects)
    returned: dict[str, None] = {}
    if not text.isascii() or "message-id:" in text[: MAX_SCAN_CHARS + 64].lower():
        returned = dict.fromkeys(
            m.group(1) for m in _BODY_MSGID_RE.finditer(text, 0, MAX_SCAN_CHARS)
        )
    attached = fields.get("content-disposition", "").strip().lower().startswith("attachment")
    plain = "" if attached else text[: MAX_TEXT_CHARS * 2]
    return MessageBody(
        content_type="text/plain",
        text=plain.replace("\r\n", "\n")[:MAX_TEXT_CHARS],
        returned_message_ids=tuple(returned),
        defects=tuple(dict.fromkeys(defects)),
    )
