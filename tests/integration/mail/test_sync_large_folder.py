"""A folder whose look-back window holds more UIDs than fit in one IMAP line syncs completely,
on a Dovecot that announces ESEARCH and on one that does not.

The folder is written as Maildir files directly (APPEND would take minutes) with UIDs starting
at 1,000,000,000: 100,000 UIDs of 11 bytes each make a `* SEARCH` answer of 1.1 MB, more than
imaplib reads in one line. One Maildir serves both runs: the second restarts Dovecot on it
with ESEARCH left out of its CAPABILITY. SQLite only: what is tested is the reading side.
"""

from __future__ import annotations

import imaplib
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.domain.model import Identity
from app.mail import imap as imap_module
from app.mail import sync as mail_sync
from app.mail.imap import ImapAccount, ImapSession
from app.services import accounts, mailboxes
from app.services.context import Context
from app.storage import tables
from tests.conftest import IN_CI, make_settings
from tests.support.dovecot import DovecotServer, dovecot_available, start_dovecot

pytestmark = pytest.mark.integration

USER, PASSWORD = "big@seller.example", "big-folder-password"
REP = "rep@seller.example"
MESSAGES = 100_000
FIRST_UID = 1_000_000_000
SENT_AT = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def write_folder(server: DovecotServer) -> None:
    """MESSAGES tiny newsletters in INBOX, numbered from FIRST_UID by Dovecot's uidlist."""
    maildir = server.maildir_path(USER)
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    (maildir / "dovecot-uidlist").write_text(f"3 V1700000000 N{FIRST_UID}\n")
    date = format_datetime(SENT_AT)
    stamp = int(SENT_AT.timestamp())
    cur = maildir / "cur"
    for i in range(MESSAGES):
        raw = (
            f"From: News <news@vendor.example>\r\nTo: {REP}\r\nSubject: Digest {i}\r\n"
            f"Date: {date}\r\nMessage-ID: <n{i}@vendor.example>\r\n"
            "List-Id: <weekly.vendor.example>\r\n\r\nNews.\r\n"
        ).encode()
        (cur / f"{stamp}.M{i}P1.big,S={len(raw)}:2,").write_bytes(raw)
    server.chown_maildir(USER)


@pytest.fixture(scope="module")
def big_root() -> Iterator[tuple[Path, str]]:
    """The Dovecot root holding the big folder, and what Dovecot announces after login."""
    if not dovecot_available():
        message = "dovecot is not installed: run scripts/install-test-deps.sh (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's tmp_path: its parent is 0700, and Dovecot's own users must get in.
    # In memory where /dev/shm has room (a container's may hold only 64 MB): 100,000 files are
    # written and deleted there in seconds, on a busy disk in a minute.
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2**30
    where = str(shm) if roomy else None
    with tempfile.TemporaryDirectory(prefix="radiosilence-big-", dir=where) as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        server = start_dovecot(root / "dovecot")
        try:
            server.add_user(USER, PASSWORD)
            write_folder(server)
            conn = imaplib.IMAP4(server.host, server.port)
            try:
                conn.login(USER, PASSWORD)
                announced = conn.capability()[1][0].decode()
                conn.select("INBOX", readonly=True)  # Dovecot indexes the folder once, here
            finally:
                conn.logout()
        finally:
            server.close()
        yield root / "dovecot", announced


def serve(root: Path, imap_capability: str | None) -> DovecotServer:
    server = start_dovecot(root, imap_capability=imap_capability)
    server.add_user(USER, PASSWORD)
    return server


async def sync_all(server: DovecotServer, database_url: str) -> tuple[ImapSession, int, int]:
    """The first sync of the folder: (session, messages the report counted, rows stored)."""
    ctx = Context.create(make_settings(database_url))
    try:
        user_id = await accounts.create_user(ctx, email=REP, password="long-password-1")
        data = mailboxes.MailboxInput(
            name="Big",
            host=server.host,
            port=server.port,
            security="plain",
            username=USER,
            secret=PASSWORD,
            auth_method="password",
            addresses=[REP],
            timezone="UTC",
            holiday_country=None,
        )
        mailbox_id = await mailboxes.create_mailbox(ctx, user_id=user_id, data=data)
        ref = mail_sync.MailboxRef(
            id=mailbox_id,
            user_id=user_id,
            identity=Identity.from_addresses([REP]),
            include=["INBOX"],
        )
        # A window, as a real first sync has: every message is inside it.
        options = mail_sync.SyncOptions(
            since=(SENT_AT - timedelta(days=30)).date(), batch_size=500, now=datetime.now(UTC)
        )
        account = ImapAccount(
            host=server.host, port=server.port, security="plain", username=USER, secret=PASSWORD
        )
        session = ImapSession.open(account)
        try:
            report = await mail_sync.sync_mailbox(ctx.engine, session, ref, options)
        finally:
            session.close()
        async with ctx.engine.connect() as conn:
            stored = await conn.scalar(
                select(func.count())
                .select_from(tables.messages)
                .where(tables.messages.c.mailbox_id == mailbox_id)
            )
            highest = await conn.scalar(
                select(tables.folders.c.highest_uid).where(
                    tables.folders.c.mailbox_id == mailbox_id, tables.folders.c.name == "INBOX"
                )
            )
        assert highest == FIRST_UID + MESSAGES - 1
        return session, report.new_messages, int(stored or 0)
    finally:
        await ctx.close()


async def test_with_esearch_the_whole_window_syncs(
    big_root: tuple[Path, str], sqlite_url: str
) -> None:
    root, _ = big_root
    server = serve(root, None)
    try:
        # The folder is what the issue is about: a plain SEARCH answer too long for one line.
        conn = imaplib.IMAP4(server.host, server.port)
        conn.login(USER, PASSWORD)
        conn.select("INBOX", readonly=True)
        with pytest.raises(imaplib.IMAP4.error, match="got more than 1000000 bytes"):
            conn.uid("SEARCH", "ALL")
        conn.shutdown()

        session, reported, stored = await sync_all(server, sqlite_url)
    finally:
        server.close()
    assert session.has_esearch
    assert reported == stored == MESSAGES


async def test_without_esearch_the_window_is_searched_in_ranges_and_syncs(
    big_root: tuple[Path, str], sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, announced = big_root
    without = " ".join(c for c in announced.split() if c.upper() != "ESEARCH")
    server = serve(root, without)
    searches: list[bytes] = []
    search = ImapSession._search

    def recorded(self: ImapSession, criteria: bytes, limit: int) -> list[int]:
        searches.append(criteria)
        return search(self, criteria, limit)

    monkeypatch.setattr(ImapSession, "_search", recorded)
    try:
        session, reported, stored = await sync_all(server, sqlite_url)
    finally:
        server.close()
    assert not session.has_esearch
    assert reported == stored == MESSAGES
    # Newest first, in slices of SEARCH_SPAN messages from the top down, each answer small.
    span = imap_module.SEARCH_SPAN
    assert MESSAGES // span == 2
    assert [s.split(b" SINCE ")[0] for s in searches[:2]] == [
        b"%d:* UID 1:*" % (MESSAGES - span + 1),
        b"1:%d UID 1:*" % (MESSAGES - span),
    ]
    # The pass after it asks only above the highest UID read, and stops at the first slice;
    # the small folders (Sent, Drafts …) are searched in one command each.
    assert searches[2] == b"%d:* UID %d:*" % (MESSAGES - span + 1, FIRST_UID + MESSAGES)
    assert all(s.startswith(b"UID ") for s in searches[3:])
