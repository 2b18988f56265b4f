"""Proves the real-Dovecot test fixture (tests/support/dovecot.py) works."""

from __future__ import annotations

import datetime as dt
import imaplib
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.factories import make_message
from tests.support.dovecot import DovecotServer, dovecot_available, start_dovecot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not dovecot_available(), reason="dovecot not installed (scripts/install-test-deps.sh)"
    ),
]

USER = "rep@example.com"
PASSWORD = "correct horse"
FOLDERS = ("INBOX", "Sent", "Clients/Acme")
WHEN = dt.datetime(2024, 3, 4, 9, 30, tzinfo=dt.UTC)


def _pids_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _assert_fully_stopped(server: DovecotServer, pids: list[int]) -> None:
    assert server.pid is None
    assert server.process_ids() == []
    assert _pids_alive(pids) == []
    pidfile = server.root / "run" / "master.pid"
    assert not pidfile.exists()


@pytest.fixture(scope="module")
def server() -> Iterator[DovecotServer]:
    srv = start_dovecot()
    srv.add_user(USER, PASSWORD)
    yield srv
    pids = srv.process_ids()
    srv.close()
    _assert_fully_stopped(srv, pids)
    assert not srv.root.exists()


@pytest.fixture(scope="module")
def appended(server: DovecotServer) -> dict[str, list[int]]:
    uids: dict[str, list[int]] = {}
    for folder in FOLDERS:
        for i in range(3):
            msg = make_message(
                from_="Zoë Buyer <zoe@acme.example>",
                to=[USER],
                subject=f"Quote #{i} — {folder}",
                date=WHEN + dt.timedelta(hours=i),
                message_id=f"<{folder.replace('/', '.')}-{i}@acme.example>",
            )
            uids.setdefault(folder, []).append(
                server.append(USER, folder, msg, date=WHEN + dt.timedelta(hours=i))
            )
    return uids


def _login(server: DovecotServer) -> imaplib.IMAP4:
    conn = imaplib.IMAP4(server.host, server.port, timeout=10)
    conn.login(USER, PASSWORD)
    return conn


def test_append_returns_uids_visible_to_imap_client(
    server: DovecotServer, appended: dict[str, list[int]]
) -> None:
    for folder in FOLDERS:
        assert appended[folder] == [1, 2, 3]
        assert server.folder_uids(USER, folder) == [1, 2, 3]
    conn = _login(server)
    try:
        typ, data = conn.select('"Clients/Acme"', readonly=True)
        assert typ == "OK" and data == [b"3"]
        typ, data = conn.uid("FETCH", "2", "(INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK"
        item = data[0]
        assert isinstance(item, tuple)
        meta, header = item
        assert b"<Clients.Acme-1@acme.example>" in header
        assert b'"04-Mar-2024 10:30:00 +0000"' in meta
        typ, data = conn.lsub('""', "*")
        subscribed = [d.rstrip(b'"') for d in data if isinstance(d, bytes)]
        assert any(d.endswith(b"/Acme") for d in subscribed), data
    finally:
        conn.logout()
    # EXAMINE-based helper must not mark anything \Seen.
    assert all("\\Seen" not in f for f in server.fetch_flags(USER, "INBOX").values())


def test_flags_and_folder_helpers(server: DovecotServer) -> None:
    msg = make_message(
        from_="a@example.com", to=["b@example.com"], subject="x", date=WHEN, message_id="m1@x"
    )
    uid = server.append(USER, "Scratch dir", msg, flags=["\\Seen", "\\Flagged"])
    assert server.fetch_flags(USER, "Scratch dir")[uid] >= {"\\Seen", "\\Flagged"}
    server.create_folder(USER, "Ünïcode")
    server.append(USER, "Ünïcode", msg)
    assert server.folder_uids(USER, "Ünïcode") == [1]
    server.delete_folder(USER, "Scratch dir")
    with server.imap(USER) as conn:
        _, data = conn.list('""', "*")
    names = b"\n".join(d for d in data if isinstance(d, bytes))
    assert b"Scratch dir" not in names
    assert b"&ANw-n&AO8-code" in names  # modified UTF-7


def test_special_use_folders(server: DovecotServer) -> None:
    conn = _login(server)
    try:
        typ, data = conn.list('""', "*")
    finally:
        conn.logout()
    assert typ == "OK"
    flags = {}
    for line in data:
        assert isinstance(line, bytes)
        m = re.match(rb'\(([^)]*)\) "/" "?([^"]*)"?', line)
        assert m, line
        flags[m.group(2).decode()] = m.group(1).decode()
    for name, flag in [
        ("Sent", "\\Sent"),
        ("Drafts", "\\Drafts"),
        ("Junk", "\\Junk"),
        ("Trash", "\\Trash"),
    ]:
        assert flag in flags[name].split()


def test_capabilities(server: DovecotServer) -> None:
    conn = _login(server)
    try:
        # imaplib keeps the pre-login list; the post-login one has the extensions.
        _, data = conn.capability()
        assert isinstance(data[0], bytes)
        caps = set(data[0].decode().split())
    finally:
        conn.logout()
    assert {"IDLE", "CONDSTORE", "QRESYNC", "SPECIAL-USE", "UIDPLUS", "MOVE"} <= caps


def test_tls_verifies_with_ca_and_fails_without(server: DovecotServer) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca_cert_path))
    assert ctx.check_hostname
    conn = imaplib.IMAP4_SSL(server.host, server.tls_port, ssl_context=ctx, timeout=10)
    try:
        assert conn.login(USER, PASSWORD)[0] == "OK"
    finally:
        conn.logout()
    # STARTTLS on the plain port presents the same certificate.
    plain = imaplib.IMAP4(server.host, server.port, timeout=10)
    try:
        plain.starttls(ssl_context=ctx)
        assert plain.login(USER, PASSWORD)[0] == "OK"
    finally:
        plain.logout()
    # "localhost" is in the SAN too.
    imaplib.IMAP4_SSL("localhost", server.tls_port, ssl_context=ctx, timeout=10).logout()

    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            server.host, server.tls_port, ssl_context=ssl.create_default_context(), timeout=10
        )


def test_add_user_works_without_restart(server: DovecotServer) -> None:
    server.add_user("second@example.com", "pw2")
    with server.imap("second@example.com") as conn:
        assert conn.select("INBOX")[0] == "OK"
    server.add_user("second@example.com", "changed")
    bad = imaplib.IMAP4(server.host, server.port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            bad.login("second@example.com", "pw2")
    finally:
        bad.logout()


def test_restart_keeps_data(server: DovecotServer, appended: dict[str, list[int]]) -> None:
    old_pids = server.process_ids()
    port, tls_port = server.port, server.tls_port
    server.restart()
    assert _pids_alive(old_pids) == []
    assert (server.port, server.tls_port) == (port, tls_port)
    for folder in FOLDERS:
        assert server.folder_uids(USER, folder) == appended[folder]


def test_kill_connections_drops_live_session(server: DovecotServer) -> None:
    conn = _login(server)
    try:
        conn.select("INBOX")
        server.kill_connections(USER)
        with pytest.raises((imaplib.IMAP4.abort, OSError)):
            conn.noop()
    finally:
        conn.shutdown()
    # Server itself is still fine.
    assert server.folder_uids(USER, "INBOX") == [1, 2, 3]


def test_start_stop_own_root(tmp_path: Path) -> None:
    # A pytest tmp_path sits under a 0700 folder: start_dovecot must cope.
    started = time.monotonic()
    srv = start_dovecot(tmp_path / "dc")
    elapsed = time.monotonic() - started
    try:
        assert elapsed < 5, elapsed
        srv.add_user(USER, PASSWORD)
        with srv.imap(USER) as conn:
            assert conn.select("Sent")[0] == "OK"
        assert srv.maildir_path(USER).is_dir()
        pids = srv.process_ids()
        assert srv.pid in pids and len(pids) > 1
    finally:
        srv.stop()
    _assert_fully_stopped(srv, pids)
    srv.stop()  # idempotent
