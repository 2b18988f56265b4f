"""Answers to UID SEARCH and LIST read off the socket within this client's own bounds.

imaplib reads each response line whole and refuses one over 1,000,000 bytes (its _MAXLINE,
never raised here: it guards every other command). An untagged `* SEARCH` answer is a single
line of UIDs, and about 140,000 of them fill it. So a search answer is read here in pieces and
parsed as it comes: its length does not matter, what is kept is bounded (the number of UIDs).
A LIST answer is one line per folder: each line and the number of folders are bounded.

Both readers take bytes from imaplib's own buffered reader (`readline`/`read`), stop exactly
after the tagged completion, and skip what they do not ask for (EXISTS, EXPUNGE, a flag change,
with any literal in it). An error from a bound says it is ours: `MailAnswerTooLarge`.
"""

from __future__ import annotations

import functools
import re
from array import array
from collections.abc import Iterable
from typing import Protocol

from app.errors import MailAnswerTooLarge, MailConnectionError, MailServerError
from app.mail.wire import read_some

PIECE = 1 << 16  # bytes read at a time of a long line
_TOKEN_MAX = 64  # the longest token of a search answer ("4294967295:4294967295" is 21)
_SEPARATORS = re.compile(rb"[ ,]+")
_LITERAL_END = re.compile(rb"\{(\d+)\}\r?\n$")

# What one LIST line may be (a folder's flags, delimiter and name; a name as a literal
# counts too) and how many folders one listing may hold.
LIST_LINE_LIMIT = 64 * 1024
LIST_FOLDER_LIMIT = 20_000


# UIDs are 32-bit (RFC 9051): held 4 bytes each in an array, not as int objects (about 36
# bytes with their list slot), since a large folder's UIDs are the most a sync holds at once.
UID_TYPECODE = "I" if array("I").itemsize >= 4 else "L"
_UID_MAX = 0xFFFFFFFF


def uid_array(values: Iterable[int] = ()) -> array[int]:
    return array(UID_TYPECODE, values)


class Refused(MailServerError):
    """The tagged NO or BAD, read to its end: the session can go on."""


class LineSource(Protocol):
    """What the readers need of imaplib's `file` (an io.BufferedReader over the socket)."""

    def readline(self, size: int | None = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...


def read_search(source: LineSource, tag: bytes, command: str, *, max_uids: int) -> array[int]:
    """The UIDs of the untagged `* SEARCH` or `* ESEARCH … ALL` answers to the command tagged
    `tag`, in the server's order; ranges (ESEARCH) expanded. More than `max_uids` of them is
    MailAnswerTooLarge, raised before they are kept."""
    found = uid_array()
    tagged = tag + b" "
    while True:
        piece = _piece(source, command)
        if piece.startswith(tagged):
            _completed(source, piece, len(tagged), command)
            return found
        upper = piece[:12].upper()
        if upper.startswith(b"* SEARCH"):
            _uids(source, piece[8:], found, command, max_uids, after_all=False)
        elif upper.startswith(b"* ESEARCH"):
            _uids(source, piece[9:], found, command, max_uids, after_all=True)
        elif upper.startswith(b"* BYE"):
            _bye(source, piece, command)
        else:
            _skip_line(source, piece, command)


def read_list(
    source: LineSource,
    tag: bytes,
    command: str,
    *,
    line_limit: int | None = None,
    max_folders: int | None = None,
) -> list[bytes | tuple[bytes, bytes]]:
    """The untagged `* LIST` answers to the command tagged `tag`, in imaplib's shape (the text
    after `* LIST `; a line ending in a literal as (line, literal), then the rest of the line),
    ready for imapclient's parser. Bounds: LIST_LINE_LIMIT and LIST_FOLDER_LIMIT unless given."""
    line_limit = LIST_LINE_LIMIT if line_limit is None else line_limit
    max_folders = LIST_FOLDER_LIMIT if max_folders is None else max_folders
    out: list[bytes | tuple[bytes, bytes]] = []
    folders = 0
    tagged = tag + b" "
    while True:
        line = _line(source, command, line_limit)
        if line.startswith(tagged):
            _completed(source, line, len(tagged), command)
            return out
        if line[:7].upper() == b"* LIST ":
            folders += 1
            if folders > max_folders:
                raise MailAnswerTooLarge(
                    f"the answer to {command} listed more than {max_folders:,} folders, the "
                    "most this client reads of one mailbox: the server did not refuse anything"
                )
            text, budget = line[7:], line_limit - len(line)
            while (literal := _LITERAL_END.search(text)) is not None:
                size = int(literal.group(1))
                budget -= size
                if budget < 0:
                    raise _too_long(command, line_limit)
                out.append((text.rstrip(b"\r\n"), _exactly(source, size, command)))
                text = _line(source, command, budget)
                budget -= len(text)
            out.append(text.rstrip(b"\r\n"))
        elif line[:5].upper() == b"* BYE":
            _bye(source, line, command)
        else:
            _skip_line(source, line, command)


def _uid(token: bytes, command: str) -> int:
    value = int(token)
    if not 0 < value <= _UID_MAX:
        raise MailServerError(f"the server's answer to {command} holds a UID out of range")
    return value


def _uids(
    source: LineSource,
    piece: bytes,
    found: array[int],
    command: str,
    max_uids: int,
    *,
    after_all: bool,
) -> None:
    """Parse one search line from `piece` on (its start already read), piece by piece. In a
    `* ESEARCH (TAG "…") UID ALL 1:5,9` line the numbers are those after ALL."""
    counting = not after_all
    carry = b""
    while True:
        done = piece.endswith(b"\n")
        data = carry + piece
        if done:  # the CR may have ended the previous piece
            data = data.rstrip(b"\r\n")
            whole, carry = data, b""
        else:  # the last token may go on in the next piece
            cut = max(data.rfind(b" "), data.rfind(b","))
            whole, carry = data[: cut + 1], data[cut + 1 :]
            if len(carry) > _TOKEN_MAX:
                raise MailServerError(f"the server's answer to {command} could not be read")
        for token in _SEPARATORS.split(whole):
            if not token:
                continue
            if token.isdigit():
                if counting:
                    found.append(_uid(token, command))
            elif counting and b":" in token:
                low, _, high = token.partition(b":")
                if not (low.isdigit() and high.isdigit()):
                    raise MailServerError(f"the server's answer to {command} could not be read")
                a, b = sorted((_uid(low, command), _uid(high, command)))
                if len(found) + (b - a + 1) > max_uids:
                    raise _too_many(command, max_uids)
                found.extend(range(a, b + 1))
            elif after_all:
                counting = token.upper() == b"ALL"
            else:
                counting = False  # e.g. "(MODSEQ 123)" after the UIDs
        if len(found) > max_uids:
            raise _too_many(command, max_uids)
        if done:
            return
        piece = _piece(source, command)


def _too_many(command: str, max_uids: int) -> MailAnswerTooLarge:
    return MailAnswerTooLarge(
        f"the answer to {command} held more than {max_uids:,} UIDs, the most this client reads "
        "of one folder: the server did not refuse anything — shorten the look-back window "
        "(RADIOSILENCE_SYNC_LOOKBACK_DAYS) or leave the folder out"
    )


def _too_long(command: str, limit: int) -> MailAnswerTooLarge:
    return MailAnswerTooLarge(
        f"a line of the answer to {command} was larger than {limit:,} bytes, the most this "
        "client reads in one line: the server did not refuse anything"
    )


def _piece(source: LineSource, command: str, size: int = PIECE) -> bytes:
    """Up to `size` bytes of the current line (all of it when shorter)."""
    return read_some(functools.partial(source.readline, size), command)


def _line(source: LineSource, command: str, limit: int) -> bytes:
    """One whole line of at most `limit` bytes, else MailAnswerTooLarge."""
    line = _piece(source, command, limit + 1)
    if not line.endswith(b"\n") or len(line) > limit:
        raise _too_long(command, limit)
    return line


def _exactly(source: LineSource, size: int, command: str) -> bytes:
    parts: list[bytes] = []
    while size > 0:
        data = read_some(functools.partial(source.read, min(size, PIECE)), command)
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


def _skip_line(source: LineSource, piece: bytes, command: str) -> None:
    """Read past a response nobody asked for, literals included, keeping nothing."""
    while True:
        if piece.endswith(b"\n"):
            literal = _LITERAL_END.search(piece[-24:])
            if literal is None:
                return
            size = int(literal.group(1))
            while size > 0:
                size -= len(_exactly(source, min(size, PIECE), command))
        piece = _piece(source, command)


def _completed(source: LineSource, line: bytes, at: int, command: str) -> None:
    status = line[at:]
    if not status.endswith(b"\n"):
        _skip_line(source, line, command)  # an overlong status text: keep its start only
    if status[:2].upper() != b"OK":
        words = status.decode("utf-8", errors="replace").strip() or "no reason given"
        raise Refused(f"the server refused {command}: {words[:300]}")


def _bye(source: LineSource, line: bytes, command: str) -> None:
    if not line.endswith(b"\n"):
        _skip_line(source, line, command)
    words = line[5:300].decode("utf-8", errors="replace").strip() or "no reason given"
    raise MailConnectionError(f"the server closed the connection during {command}: {words}")
