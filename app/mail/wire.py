"""UID FETCH responses read straight from the socket: bytes.find over large buffers.

imaplib reads a response line by line, matches each line with regexes and builds a list of
parts; for the header pass of a large mailbox that costs more than the server's own work.
Here the bytes are parsed as they arrive into `FetchRecord`s: the item a literal belongs to is
known by the section name before its `{n}`, so the literal is one slice, whatever it contains.
Untagged responses other than a FETCH with a UID (EXISTS, EXPUNGE, a flag change) are skipped;
`* BYE` means the connection is going away; the tagged completion ends the read.

Pure parsing (`FetchParser.feed`) is separate from reading (`read_fetch`), which takes bytes
from imaplib's own buffered reader with peek/read so that nothing it buffered is lost and
nothing after the tagged completion is taken from it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Generic, NamedTuple, Protocol, TypeVar

from app.errors import MailAnswerTooLarge, MailConnectionError, MailServerError

_NUMBER = re.compile(rb"\d+")
# The usual shape of a response, read in one match: plain items (any order), then the one
# section whose literal ends it, e.g. `* 12 FETCH (UID 345 INTERNALDATE "…" BODY[…] {678}`.
# Anything else (UID after the literal, NIL, two literals, FLAGS …) takes the general path.
_USUAL = re.compile(
    rb"\* \d+ FETCH \("
    rb'(?:UID (\d+) |INTERNALDATE "([^"]*)" |X-GM-MSGID (\d+) |X-GM-THRID (\d+) )*'
    rb"BODY\[(HEADER\.FIELDS|TEXT)[^\]]*\](?:<\d+>)? \{(\d+)\}\r\n"
)
_ESCAPED = re.compile(rb"\\(.)", re.DOTALL)
_CHUNK = 1 << 16
# The most one FETCH response may hold: a message's header fields (a long References header
# is tens of kB) or the body prefix we ask for. A response is kept whole until it is parsed,
# so a server announcing a huge literal must not make us buffer it.
RESPONSE_LIMIT = 4 * 1024 * 1024
T = TypeVar("T")


class FetchRecord(NamedTuple):
    """One `* n FETCH (...)` response with a UID: the items we read, None when absent."""

    uid: int
    internal_date: bytes | None = None  # the quoted INTERNALDATE, unparsed
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    header: bytes | None = None  # BODY[HEADER.FIELDS (...)]; b"" when sent as NIL or ""
    # BODY[TEXT] (or a partial of it), or BODY[] when the whole message was asked for; b""
    # when NIL or ""
    text: bytes | None = None


class BufferedSource(Protocol):
    """What `read_fetch` needs of imaplib's `file` (an io.BufferedReader over the socket)."""

    def peek(self, size: int = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...


# What a caller builds of each FETCH response with a UID, from the FetchRecord fields in order,
# while the server is still sending the next ones; None drops the response.
Make = Callable[[int, bytes | None, int | None, int | None, bytes | None, bytes | None], T | None]


class FetchParser(Generic[T]):
    """Incremental parser of the responses to one tagged UID FETCH command: `records` holds
    what `make` built of each FETCH response with a UID (`FetchRecord` builds a FetchRecord)."""

    def __init__(
        self, tag: bytes, make: Make[T], command: str = "UID FETCH", limit: int = RESPONSE_LIMIT
    ) -> None:
        self._tagged = tag + b" "
        self.limit = limit  # the most bytes of one response (see RESPONSE_LIMIT)
        self._make = make
        self.command = command  # for messages: "the server refused UID FETCH: …"
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._need = 0  # bytes the pending response needs before parsing it again is useful
        self.records: list[T] = []
        self.done = False
        self.error: MailServerError | None = None

    def feed(self, data: bytes) -> int:
        """Parse `data`, continuing what came before. Returns how many of its bytes belong to
        this command: all of them, unless the tagged completion ends inside `data`."""
        if self._pending:
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size < self._need:
                return len(data)
            held = self._pending_size - len(data)
            buf = b"".join(self._pending)
        else:
            held = 0
            buf = data
        pos = self._parse(buf)
        if self.done:
            self._pending, self._pending_size = [], 0
            return pos - held
        rest = buf[pos:]
        if max(len(rest), self._need) > self.limit:
            raise MailAnswerTooLarge(
                f"a response to {self.command} was larger than {self.limit:,} bytes, the most "
                "this client reads of one message: the server did not refuse anything"
            )
        self._pending = [rest] if rest else []
        self._pending_size = len(rest)
        return len(data)

    def _parse(self, buf: bytes) -> int:
        """Complete responses in `buf`, from its start; returns where the first incomplete
        one starts (or the end of the tagged completion)."""
        find = buf.find
        size = len(buf)
        pos = 0
        usual = _USUAL.match
        make, append = self._make, self.records.append
        while pos < size:
            match = usual(buf, pos)
            if match is not None:
                uid, date, msgid, thrid, section, length = match.groups()
                lit_start = match.end()
                lit_end = lit_start + int(length)
                if lit_end + 3 > size:
                    self._need = lit_end + 3 - pos
                    return pos
                if uid is not None and buf.startswith(b")\r\n", lit_end):
                    literal = buf[lit_start:lit_end]
                    record = make(
                        int(uid),
                        date,
                        None if msgid is None else int(msgid),
                        None if thrid is None else int(thrid),
                        literal if section == b"HEADER.FIELDS" else None,
                        literal if section == b"TEXT" else None,
                    )
                    if record is not None:
                        append(record)
                    pos = lit_end + 3
                    continue
            eol = find(b"\r\n", pos)
            if eol < 0:
                self._need = size - pos + 1
                return pos
            # A line ending in {n} announces a literal of n bytes; the response goes on after it.
            literals: list[tuple[int, int, int]] | None = None  # ({ position, start, end)
            start = pos
            while eol > start and buf[eol - 1] == 0x7D:  # "}"
                brace = buf.rfind(b"{", start, eol)
                digits = buf[brace + 1 : eol - 1] if brace >= 0 else b""
                if not digits.isdigit():
                    break
                lit_end = eol + 2 + int(digits)
                if lit_end > size:
                    self._need = lit_end - pos
                    return pos
                if literals is None:
                    literals = []
                literals.append((brace, eol + 2, lit_end))
                start = lit_end
                eol = find(b"\r\n", start)
                if eol < 0:
                    self._need = size - pos + 1
                    return pos
            if buf.startswith(b"* ", pos):
                space = find(b" ", pos + 2, pos + 24)
                if space > 0 and buf.startswith(b"FETCH (", space + 1):
                    self._fetch(buf, space + 8, eol, literals)
                elif buf.startswith(b"BYE", pos + 2):
                    self.done = True
                    self.error = MailConnectionError(
                        f"the server closed the connection during {self.command}: "
                        + _text(buf[pos + 2 : eol])
                    )
                    return eol + 2
            elif buf.startswith(self._tagged, pos):
                self.done = True
                status = buf[pos + len(self._tagged) : eol]
                if not status.startswith(b"OK"):
                    self.error = MailServerError(
                        f"the server refused {self.command}: {_text(status)}"
                    )
                return eol + 2
            pos = eol + 2
        self._need = 0
        return pos

    def _fetch(
        self, buf: bytes, start: int, end: int, literals: list[tuple[int, int, int]] | None
    ) -> None:
        """One FETCH response's items: `start` is after `FETCH (`, `end` at its final CRLF;
        the text runs in segments between the literals."""
        find = buf.find
        uid = thrid = msgid = None
        date = header = text = None
        segments: list[tuple[int, int, bytes | None]] = [(start, end, None)]
        if literals is not None:
            segments = []
            for brace, lit_start, lit_end in literals:
                segments.append((start, brace, buf[lit_start:lit_end]))
                start = lit_end
            segments.append((start, end, None))
        for seg_start, seg_end, literal in segments:
            i = seg_start
            while i < seg_end:
                bracket = find(b"[", i, seg_end)
                attrs_end = seg_end if bracket < 0 else bracket
                if attrs_end - i > 4:  # the plain items: UID n, INTERNALDATE "…", X-GM-…
                    at = find(b"UID ", i, attrs_end)
                    while at >= 0 and at > seg_start and buf[at - 1] not in b"( ":
                        at = find(b"UID ", at + 4, attrs_end)
                    if at >= 0 and (number := _NUMBER.match(buf, at + 4, attrs_end)):
                        uid = int(number.group())
                    at = find(b'INTERNALDATE "', i, attrs_end)
                    if at >= 0:
                        close = find(b'"', at + 14, attrs_end)
                        if close > 0:
                            date = buf[at + 14 : close]
                    at = find(b"X-GM-MSGID ", i, attrs_end)
                    if at >= 0 and (number := _NUMBER.match(buf, at + 11, attrs_end)):
                        msgid = int(number.group())
                    at = find(b"X-GM-THRID ", i, attrs_end)
                    if at >= 0 and (number := _NUMBER.match(buf, at + 11, attrs_end)):
                        thrid = int(number.group())
                if bracket < 0:
                    break
                close = find(b"]", bracket, seg_end)
                if close < 0:
                    break
                section = buf[bracket + 1 : close]
                value_at = close + 1
                if buf.startswith(b"<", value_at):  # a partial's origin: BODY[TEXT]<0>
                    origin_end = find(b">", value_at, seg_end)
                    value_at = seg_end if origin_end < 0 else origin_end + 1
                value_at += 1  # the space before the value
                value: bytes | None
                if value_at >= seg_end:  # the value is the literal after this segment
                    value, i = literal, seg_end
                elif buf.startswith(b"NIL", value_at):
                    value, i = b"", value_at + 3
                elif buf.startswith(b'"', value_at):
                    value, i = _quoted(buf, value_at, seg_end)
                else:
                    value, i = None, value_at
                if section.startswith(b"HEADER.FIELDS"):
                    header = value
                elif section in (b"TEXT", b""):  # BODY[]: the whole message, when asked
                    text = value
        if uid is not None:
            record = self._make(uid, date, msgid, thrid, header, text)
            if record is not None:
                self.records.append(record)


def read_some(read: Callable[[], bytes], command: str) -> bytes:
    """What one `read` of the answer to `command` gives; a dropped or closed connection is a
    MailConnectionError that says so (every reader of long answers reads through this)."""
    try:
        data = read()
    except (OSError, ValueError) as exc:  # socket errors, timeouts, TLS, a closed file
        raise MailConnectionError(
            f"the connection dropped during {command}: {str(exc) or type(exc).__name__}"
        ) from exc
    if not data:
        raise MailConnectionError(f"the server closed the connection during {command}")
    return data


def read_fetch(source: BufferedSource, parser: FetchParser[T]) -> list[T]:
    """Read and parse until `parser` has its tagged completion; consume exactly that much."""
    while not parser.done:
        # What is buffered, or one read from the socket.
        data = read_some(functools.partial(source.peek, _CHUNK), parser.command)
        source.read(parser.feed(data))  # from the buffer: no more than peek returned
    if parser.error is not None:
        raise parser.error
    return parser.records


def _quoted(buf: bytes, at: int, end: int) -> tuple[bytes | None, int]:
    """The quoted string starting at `at` (its opening quote), unescaped; and where it ends."""
    close = at
    while True:
        close = buf.find(b'"', close + 1, end)
        if close < 0:
            return None, end
        backslashes = 0
        while buf[close - 1 - backslashes] == 0x5C:  # "\"
            backslashes += 1
        if backslashes % 2 == 0:
            break
    value = buf[at + 1 : close]
    if b"\\" in value:
        value = _ESCAPED.sub(rb"\1", value)
    return value, close + 1


def _text(words: bytes) -> str:
    return words.decode("utf-8", errors="replace").strip() or "no reason given"
