"""An ImapSession over scripted server bytes: for unit tests of what is sent and read."""

from __future__ import annotations

import io

import imapclient

from app.mail.imap import ImapAccount, ImapSession


class ScriptedImap:
    """What ImapSession reads of imaplib's IMAP4 (through mail.imaplib_internals.RawImap): tags,
    send, the buffered reader. tests/unit/mail/test_imaplib_internals.py checks the real one."""

    def __init__(self, replies: bytes) -> None:
        self.tagnum = 0
        self.tagged_commands: dict[bytes, object] = {}
        self.sent: list[bytes] = []
        self.file = io.BufferedReader(io.BytesIO(replies))

    def _new_tag(self) -> bytes:
        self.tagnum += 1
        tag = b"T%d" % self.tagnum
        self.tagged_commands[tag] = None
        return tag

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def shutdown(self) -> None:
        self.file.close()


class ScriptedClient:
    # imapclient's own LIST parser, as ImapSession.list_folders uses it
    folder_encode = True
    _proc_folder_list = imapclient.IMAPClient._proc_folder_list

    def __init__(self, replies: bytes) -> None:
        self._imap = ScriptedImap(replies)


def session_over(replies: bytes) -> tuple[ImapSession, ScriptedImap]:
    client = ScriptedClient(replies)
    account = ImapAccount(host="127.0.0.1", port=143, security="plain", username="u", secret="s")
    return ImapSession(client, account), client._imap
