"""The private parts of imaplib and imapclient that app/mail/imaplib_internals.py relies on.

Run against the real imaplib.IMAP4 and IMAPClient of this Python (the other unit tests use a
scripted stand-in, which would keep passing if imaplib changed): only the socket is replaced,
by a script that answers each command as it is sent. A failure names the Python version and
what changed: read the module's docstring before touching the fast paths.
"""

from __future__ import annotations

import imaplib
import io
import platform
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import imapclient
import pytest

from app.errors import MailConnectionError
from app.mail.imap import ImapAccount, ImapSession

VERSIONS = f"Python {platform.python_version()} (imapclient {imapclient.__version__})"
EXISTS = b"* 3 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n* OK [UIDNEXT 12] ok\r\n"
FETCHED = (
    b"* 1 FETCH (UID 10 BODY[HEADER.FIELDS (MESSAGE-ID)] {23}\r\nMessage-ID: <a@b.c>\r\n\r\n)\r\n"
    b"* 2 FETCH (UID 11 BODY[HEADER.FIELDS (MESSAGE-ID)] {23}\r\nMessage-ID: <d@e.f>\r\n\r\n)\r\n"
)
SCRIPT = {
    b"CAPABILITY": b"* CAPABILITY IMAP4rev1 ESEARCH IDLE\r\n{tag} OK done\r\n",
    b"LIST": b'* LIST (\\HasNoChildren) "/" INBOX\r\n* LIST (\\Sent) "/" "&AMk-t&AOk-"\r\n'
    b"{tag} OK done\r\n",
    b"EXAMINE": EXISTS + b"{tag} OK [READ-ONLY] done\r\n",
    b"UID SEARCH": b'* ESEARCH (TAG "{tag}") UID ALL 10:11\r\n{tag} OK done\r\n',
    b"UID FETCH 10:11": FETCHED + b"{tag} OK done\r\n",
    b"UID FETCH 12": b"* 3 FETCH (UID 12 BODY[HEADER.FIELDS (MESSAGE-ID)] {23}\r\nMess",
    b"NOOP": b"* 4 EXISTS\r\n{tag} OK done\r\n",
}


def changed(what: str) -> NoReturn:
    pytest.fail(
        f"imaplib/imapclient of {VERSIONS} changed: {what}. app/mail/imaplib_internals.py "
        "relies on it (its docstring says what for): adapt that module, then this test.",
        pytrace=False,
    )


@contextmanager
def relied_on(what: str) -> Iterator[None]:
    """Any error here is a change of the internals, said as such."""
    try:
        yield
    except Exception as exc:
        changed(f"{what} ({type(exc).__name__}: {exc})")


class ScriptedSocket:
    """The socket under imaplib: each command line sent queues its scripted answer."""

    def __init__(self) -> None:
        self.pending = bytearray(b"* PREAUTH ready\r\n")  # logged in: no LOGIN to script
        self.sent: list[bytes] = []
        self.shut = False
        socket = self

        class Stream(io.RawIOBase):
            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                size = min(len(buffer), len(socket.pending))
                buffer[:size] = socket.pending[:size]
                del socket.pending[:size]
                return size

        self.stream = Stream()

    def makefile(self, mode: str) -> io.BufferedReader:
        assert mode == "rb"
        return io.BufferedReader(self.stream)

    def sendall(self, data: bytes) -> None:
        for line in bytes(data).split(b"\r\n"):
            if not line:
                continue
            self.sent.append(line)
            tag, _, command = line.partition(b" ")
            key = max((k for k in SCRIPT if command.upper().startswith(k)), key=len)
            self.pending += SCRIPT[key].replace(b"{tag}", tag)

    def settimeout(self, timeout: float | None) -> None:
        pass

    def shutdown(self, how: int) -> None:
        self.shut = True

    def close(self) -> None:
        pass


class ScriptedIMAP4(imaplib.IMAP4):
    """The real imaplib.IMAP4 (its open, send, shutdown, tags), over a ScriptedSocket."""

    def _create_socket(self, timeout: float | None = None) -> Any:
        self.scripted = ScriptedSocket()
        return self.scripted


class ScriptedClient(imapclient.IMAPClient):  # type: ignore[misc]
    def _create_IMAP4(self) -> imaplib.IMAP4:
        return ScriptedIMAP4(self.host, self.port, None)


def open_session() -> tuple[ImapSession, ScriptedClient, ScriptedIMAP4]:
    with relied_on("IMAPClient builds its connection with _create_IMAP4() into ._imap"):
        client = ScriptedClient("127.0.0.1", port=143, ssl=False)
        raw = client._imap
        assert isinstance(raw, ScriptedIMAP4)
    account = ImapAccount(host="127.0.0.1", port=143, security="plain", username="u", secret="s")
    with relied_on("IMAP4._new_tag can be replaced on the instance"):
        session = ImapSession(client, account)
    return session, client, raw


def test_the_private_attributes_are_there() -> None:
    for name in ("_new_tag", "tagged_commands", "send", "shutdown", "file", "tagpre", "tagnum"):
        if not hasattr(ScriptedIMAP4("127.0.0.1", 143, None), name):
            changed(f"imaplib.IMAP4 has no {name!r} any more")
    if not callable(getattr(imapclient.IMAPClient, "_proc_folder_list", None)):
        changed("IMAPClient._proc_folder_list (the LIST parser) is gone")


def test_new_tag_registers_the_next_tag_of_imaplibs_sequence() -> None:
    raw = ScriptedIMAP4("127.0.0.1", 143, None)
    with relied_on("IMAP4._new_tag()"):
        first, second = raw._new_tag(), raw._new_tag()
    if not (isinstance(first, bytes) and first.startswith(raw.tagpre)):
        changed(f"_new_tag() returned {first!r}, not bytes starting with tagpre {raw.tagpre!r}")
    if int(second[len(raw.tagpre) :]) != int(first[len(raw.tagpre) :]) + 1:
        changed(f"_new_tag() no longer counts up: {first!r} then {second!r}")
    if raw.tagged_commands.get(first, "missing") is not None:
        changed("_new_tag() no longer registers the tag in tagged_commands with None")


def test_our_commands_and_imaplibs_share_one_tag_sequence_and_are_all_counted() -> None:
    session, client, raw = open_session()
    socket = raw.scripted
    greeting_commands = len(socket.sent)  # imaplib's own CAPABILITY, before the session
    with relied_on("the fast paths over the real imaplib (file, send, tagged_commands)"):
        session.refresh_capabilities()  # imapclient's path
        folders = session.list_folders()  # ours: LIST read by `answers`, parsed by imapclient
        client.select_folder("INBOX", readonly=True)  # imaplib's path
        uids = session.search_uids(min_uid=1, since=None)  # ours: ESEARCH
        headers = session.fetch_headers([10, 11])  # ours: the fast FETCH
        client.noop()  # imaplib's again, after ours

    assert [f.name for f in folders] == ["INBOX", "Été"]
    assert list(uids) == [10, 11]
    assert [(h.uid, h.header) for h in headers] == [
        (10, b"Message-ID: <a@b.c>\r\n\r\n"),
        (11, b"Message-ID: <d@e.f>\r\n\r\n"),
    ]
    tags = [line.split(b" ", 1)[0] for line in socket.sent]
    numbers = [int(re.sub(rb"^[A-Z]+", b"", t)) for t in tags]
    if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
        changed(f"the tags of ours and imaplib's commands are not one sequence: {tags}")
    if session.round_trips != len(socket.sent) - greeting_commands:
        changed(
            f"a replaced _new_tag is not used by imaplib's own commands: {session.round_trips} "
            f"counted of {len(socket.sent) - greeting_commands} sent"
        )
    if raw.tagged_commands:
        changed(f"tags left waiting in tagged_commands: {sorted(raw.tagged_commands)}")


def test_an_answer_cut_short_shuts_the_connection() -> None:
    session, _, raw = open_session()
    with pytest.raises(MailConnectionError):
        session.fetch_headers([12])  # the server's answer ends mid-literal
    if not raw.scripted.shut or not raw.file.closed:
        changed("IMAP4.shutdown() no longer closes the reader and shuts the socket")
