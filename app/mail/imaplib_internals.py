"""The private parts of imaplib and imapclient that ImapSession relies on, and nowhere else.

Why they are used at all: the fast paths (a header FETCH parsed off the socket by `wire`,
SEARCH and LIST answers read within our bounds by `answers`) send their command and read its
answer themselves, because imaplib's line-by-line reader cost more than the server's own work
and holds a whole `* SEARCH` line in memory. They still take their tags from imaplib, so that
its tag sequence goes on unbroken for the commands it sends itself (LOGIN, SELECT, IDLE …),
and every command, ours or imaplib's, is counted as one round trip.

What they rely on, all private (none is documented; a Python upgrade may change any of them:
tests/unit/mail/test_imaplib_internals.py fails, naming the version, when one does):
- `IMAPClient._imap`: the imaplib.IMAP4 under an IMAPClient;
- `IMAP4._new_tag()`: the next tag, registered in `tagged_commands`, looked up on the instance
  by imaplib's own `_command` (so that replacing it counts imaplib's commands too);
- `IMAP4.tagged_commands`: tag -> answer, from which a tag we read ourselves is removed;
- `IMAP4.file`: the buffered reader over the socket (`readline`, `read`, `peek`);
- `IMAP4.send()` / `IMAP4.shutdown()`: write all bytes / close the socket and the reader;
- `IMAPClient._proc_folder_list()`: imapclient's parser of LIST answer lines.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol


class Reader(Protocol):
    """imaplib's `file`: an io.BufferedReader over the socket."""

    def readline(self, size: int | None = ..., /) -> bytes: ...

    def read(self, size: int | None = ..., /) -> bytes: ...

    def peek(self, size: int = ..., /) -> bytes: ...


class RawImap:
    """The imaplib connection under an IMAPClient, reached only through these methods."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._imap = client._imap

    def count_tags(self, counted: Callable[[], None]) -> None:
        """Call `counted()` for every tag taken, by us or by imaplib: one per command."""
        new_tag = self._imap._new_tag

        def counting_new_tag() -> bytes:
            counted()
            tag: bytes = new_tag()
            return tag

        self._imap._new_tag = counting_new_tag

    def new_tag(self) -> bytes:
        """The next tag of imaplib's sequence, for a command we send and read ourselves."""
        tag: bytes = self._imap._new_tag()
        return tag

    def forget(self, tag: bytes) -> None:
        """Our command's answer was read by us: imaplib must not wait for it."""
        self._imap.tagged_commands.pop(tag, None)

    @property
    def file(self) -> Reader:
        reader: Reader = self._imap.file
        return reader

    def send(self, data: bytes) -> None:
        self._imap.send(data)

    def shutdown(self) -> None:
        """Close the socket: after an answer read halfway, no later command may read the rest."""
        self._imap.shutdown()

    def parse_folder_list(self, lines: list[Any]) -> list[tuple[Any, Any, str]]:
        """LIST answer lines as (flags, delimiter, name), by imapclient's own parser (it also
        decodes modified UTF-7 names)."""
        listed: list[tuple[Any, Any, str]] = self._client._proc_folder_list(lines)
        return listed
