"""A follow-up draft as an RFC 5322 message: the question on top, the rep's last e-mail
forwarded inline below it, as mail clients show a forward.

Nothing is added that the rep did not write: no greeting, no signature. The headers make it
a reply to the rep's own last e-mail (In-Reply-To, References, "Re: " + the same subject), so
that it stays in the thread in every client on both sides; without them Gmail shows a
"ghost draft" outside the conversation.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from app.domain.followup import FollowUpPlan
from app.domain.htmltext import html_to_text
from app.domain.model import Address
from app.domain.threads import decode_thread_index

FORWARD_MARKER = "---------- Forwarded message ---------"
FORWARD_HEADERS = ("From", "Date", "Subject", "To", "Cc")
HTML_FORWARD_START = '<div class="gmail_quote rs-forward">'
_BODY_RE = re.compile(r"<body[^>]*>(.*)</body>", re.IGNORECASE | re.DOTALL)
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_CONTENT_HEADERS = frozenset({"content-type", "content-transfer-encoding", "mime-version"})
WIRE_POLICY = policy.SMTP  # CRLF line ends, RFC 2047 for non-ASCII headers: fit for APPEND


@dataclass(frozen=True, kw_only=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, kw_only=True)
class ForwardParts:
    """The forwarded e-mail, ready to go below the question."""

    text_block: str  # marker, header block, the original's text
    html_block: str | None  # the same for the HTML alternative
    attachments: tuple[Attachment, ...] = ()
    skipped_attachments: tuple[str, ...] = ()  # over the size cap: left out
    thread_index: str | None = None  # the draft's own Thread-Index (already extended)
    thread_topic: str | None = None
    recipient_names: dict[str, str] = field(default_factory=dict)  # address -> display name


def new_message_id(sender: str) -> str:
    """A new Message-ID at the rep's own domain."""
    domain = sender.rpartition("@")[2].strip().lower() or "localhost"
    return make_msgid(domain=domain)


def read_original(raw: bytes) -> Message:
    """The rep's e-mail as fetched over IMAP (or kept at import), parsed once for both
    `text_and_attachments` and `forward_parts`: an e-mail may be tens of megabytes."""
    return message_from_bytes(raw, policy=policy.default)


def text_and_attachments(msg: Message) -> tuple[str, bool]:
    """An e-mail's text (from its HTML when it has no plain part) and whether it carries
    attachments: what `followup.is_bare_bump` weighs."""
    text, _ = _bodies(msg)
    attached = isinstance(msg, EmailMessage) and any(True for _ in msg.iter_attachments())
    return text, attached


def forward_parts(
    msg: Message,
    *,
    attachments: bool = False,
    max_attachment_bytes: int = 0,
    now: datetime,
    seed: str = "",
) -> ForwardParts:
    """The original e-mail (`read_original`) as the parts of a forward."""
    header_lines = [(name, _header(msg, name)) for name in FORWARD_HEADERS]
    shown = [(name, value) for name, value in header_lines if value]
    text, original_html = _bodies(msg)
    text_block = "\n".join(
        [FORWARD_MARKER, *(f"{name}: {value}" for name, value in shown), "", text.rstrip()]
    )
    inner = original_html if original_html is not None else _text_to_html(text)
    html_block = (
        HTML_FORWARD_START
        + '<div dir="ltr" class="gmail_attr">'
        + html.escape(FORWARD_MARKER, quote=False)
        + "<br>"
        + "".join(f"{name}: {_html_header(name, value)}<br>" for name, value in shown)
        + "</div><br><br>"
        + inner
        + "</div>"
    )
    kept, skipped = _attachments(msg, max_attachment_bytes) if attachments else ((), ())
    index = _header(msg, "Thread-Index")
    extended = extend_thread_index(index, now, seed=seed) if index else None
    topic = _header(msg, "Thread-Topic") or None
    return ForwardParts(
        text_block=text_block,
        html_block=html_block,
        attachments=kept,
        skipped_attachments=skipped,
        thread_index=extended,
        thread_topic=topic if extended else None,
        recipient_names=_recipient_names(msg),
    )


def compose(
    plan: FollowUpPlan,
    question: str,
    parts: ForwardParts,
    *,
    message_id: str,
    date: datetime,
    body: str | None = None,
) -> EmailMessage:
    """The draft. `body`, when the rep rewrote the whole text, replaces question and forward
    (then there is no HTML alternative: it would say something else)."""
    msg = EmailMessage(policy=policy.default)
    msg["From"] = _address(plan.from_)
    if plan.to:
        msg["To"] = [_address(a) for a in plan.to]
    if plan.cc:
        msg["Cc"] = [_address(a) for a in plan.cc]
    msg["Subject"] = plan.subject
    msg["Date"] = format_datetime(date.astimezone(ZoneInfo(plan.timezone)))
    msg["Message-ID"] = message_id
    if plan.in_reply_to:  # the rep's e-mail had a Message-ID to answer
        msg["In-Reply-To"] = plan.in_reply_to
    if plan.references:
        msg["References"] = " ".join(plan.references)
    # Ask Exchange not to answer the follow-up with out-of-office or auto-replies.
    msg["X-Auto-Response-Suppress"] = "OOF, AutoReply"
    if parts.thread_index:
        msg["Thread-Topic"] = parts.thread_topic or plan.subject.removeprefix("Re: ")
        msg["Thread-Index"] = parts.thread_index
    _fill(msg, question, parts, body)
    return msg


def recompose(
    raw: bytes, *, old_question: str, question: str, body: str | None, date: datetime
) -> EmailMessage:
    """The draft again with another question or a rewritten body: same headers (the same
    Message-ID, so the new version replaces the old one), a new Date."""
    old = message_from_bytes(raw, policy=policy.default)
    parts = parts_of_draft(raw, old_question)
    zone = getattr(getattr(old.get("Date"), "datetime", None), "tzinfo", None)
    msg = EmailMessage(policy=policy.default)
    for name, value in old.items():
        if name.lower() in _CONTENT_HEADERS:
            continue
        when = date.astimezone(zone) if zone else date  # the rep's zone, as first composed
        msg[name] = format_datetime(when) if name.lower() == "date" else str(value)
    _fill(msg, question, parts, body)
    return msg


def with_date(raw: bytes, date: datetime) -> bytes:
    """The same draft dated `date` (in the zone it was dated in): a draft approved or sent
    days after it was composed must not arrive looking old."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    zone = getattr(getattr(msg.get("Date"), "datetime", None), "tzinfo", None)
    del msg["Date"]
    msg["Date"] = format_datetime(date.astimezone(zone) if zone else date)
    return to_bytes(msg)


def _fill(msg: EmailMessage, question: str, parts: ForwardParts, body: str | None) -> None:
    question = question.strip()
    text = body if body is not None else f"{question}\n\n{parts.text_block}"
    msg.set_content(_crlf_safe(text), subtype="plain", charset="utf-8", cte="quoted-printable")
    if body is None and parts.html_block is not None:
        document = (
            '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
            + '<div dir="auto" class="rs-question">'
            + html.escape(question, quote=False).replace("\n", "<br>")
            + "</div><br>"
            + parts.html_block
            + "</body></html>"
        )
        msg.add_alternative(document, subtype="html", charset="utf-8", cte="quoted-printable")
    for item in parts.attachments:
        maintype, _, subtype = item.content_type.partition("/")
        msg.add_attachment(item.data, maintype=maintype, subtype=subtype, filename=item.filename)


def to_bytes(msg: EmailMessage) -> bytes:
    return msg.as_bytes(policy=WIRE_POLICY)


def parts_of_draft(raw: bytes, question: str) -> ForwardParts:
    """The forward inside a composed draft, to compose it again with another question."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text, document = _bodies(msg)
    question = question.strip()
    text_block = text[len(question) :].strip("\n") if text.startswith(question) else ""
    html_block = None
    if document is not None and HTML_FORWARD_START in document:
        html_block = document[document.index(HTML_FORWARD_START) :].rstrip()
    attachments = tuple(
        Attachment(
            filename=part.get_filename() or "attachment",
            content_type=part.get_content_type(),
            data=_payload(part),
        )
        for part in msg.iter_attachments()
    )
    return ForwardParts(
        text_block=text_block,
        html_block=html_block,
        attachments=attachments,
        thread_index=_header(msg, "Thread-Index") or None,
        thread_topic=_header(msg, "Thread-Topic") or None,
    )


def draft_text(raw: bytes) -> str:
    """The text alternative of a composed draft (what the rep reviews)."""
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return _bodies(msg)[0]


def extend_thread_index(value: str, now: datetime, *, seed: str = "") -> str | None:
    """Outlook's Thread-Index of a reply: the parent's plus one 5-byte child block holding
    the time since the conversation began ([MS-OXOMSG] §2.2.1.3). None when malformed."""
    raw = decode_thread_index(value)
    if raw is None:
        return None
    started = int.from_bytes(raw[:6], "big") << 16  # the high 48 bits of a FILETIME
    current = int((now - _FILETIME_EPOCH).total_seconds() * 10_000_000)
    delta = max(0, current - started)
    # Under about 1.7 years: bits 48-18 of the delta; beyond: bits 53-23 and the high flag.
    short = delta < 1 << 49
    block = (delta >> 18) & 0x7FFFFFFF if short else ((delta >> 23) & 0x7FFFFFFF) | (1 << 31)
    nibble = hashlib.sha256(seed.encode()).digest()[0] & 0xF0  # random part, reproducible
    child = block.to_bytes(4, "big") + bytes([nibble | (len(raw) - 22) // 5 % 16])
    return base64.b64encode(raw + child).decode("ascii")


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the parser cannot make sense of: show nothing for it
        return ""
    return " ".join(str(value).split()) if value is not None else ""


def _html_header(name: str, value: str) -> str:
    if name == "From" and "<" in value:
        who, _, rest = value.partition("<")
        return (
            f'<strong class="gmail_sendername" dir="auto">{html.escape(who.strip().strip(chr(34)))}'
            f'</strong> <span dir="auto">&lt;{html.escape(rest.rstrip(">"))}&gt;</span>'
        )
    return html.escape(value)


def _bodies(msg: Message) -> tuple[str, str | None]:
    """(text, inner HTML or None) of a message; text derived from HTML when it has none."""
    plain = html_part = None
    if isinstance(msg, EmailMessage):
        plain = msg.get_body(preferencelist=("plain",))
        html_part = msg.get_body(preferencelist=("html",))
    document = _text_of(html_part) if html_part is not None else None
    inner = None
    if document is not None:
        match = _BODY_RE.search(document)
        inner = match.group(1) if match else document
    if plain is not None:
        text = _text_of(plain)
    elif document is not None:
        text = html_to_text(document)
    else:
        text = ""
    return text.replace("\r\n", "\n"), inner


def _text_of(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, UnicodeError, ValueError, AttributeError):
        content = None
    if isinstance(content, str):
        return content
    return _payload(part).decode("utf-8", "replace")


def _payload(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    inner = part.get_payload()
    if isinstance(inner, list) and inner and isinstance(inner[0], Message):
        return inner[0].as_bytes()  # message/rfc822: the enclosed message's bytes
    return b""


def _attachments(msg: Message, cap: int) -> tuple[tuple[Attachment, ...], tuple[str, ...]]:
    kept: list[Attachment] = []
    skipped: list[str] = []
    total = 0
    if not isinstance(msg, EmailMessage):
        return (), ()
    for part in msg.iter_attachments():
        data = _payload(part)
        name = part.get_filename() or "attachment"
        content_type = part.get_content_type()
        if content_type.startswith(("message/", "multipart/")):
            content_type = "application/octet-stream"
        if total + len(data) > cap:
            skipped.append(name)
            continue
        total += len(data)
        kept.append(Attachment(filename=name, content_type=content_type, data=data))
    return tuple(kept), tuple(skipped)


def _recipient_names(msg: Message) -> dict[str, str]:
    names: dict[str, str] = {}
    for header in ("To", "Cc"):
        try:
            value = msg.get(header)
            addresses = getattr(value, "addresses", ()) if value is not None else ()
        except Exception:  # unparsable address list: no names from it
            addresses = ()
        for a in addresses:
            if a.display_name and a.addr_spec:
                names[a.addr_spec.lower()] = a.display_name
    return names


def _address(a: Address) -> HeaderAddress | str:
    try:
        return HeaderAddress(display_name=a.name, addr_spec=a.email)
    except (ValueError, IndexError, TypeError):  # an address the header registry refuses
        return a.email


def _text_to_html(text: str) -> str:
    return (
        '<div dir="auto">' + html.escape(text.rstrip(), quote=False).replace("\n", "<br>\n")
    ) + "</div>"


def _crlf_safe(text: str) -> str:
    # A lone CR would survive quoted-printable and confuse clients; keep plain newlines.
    return text.replace("\r\n", "\n").replace("\r", "\n")
