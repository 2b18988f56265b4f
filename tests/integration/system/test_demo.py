"""`radiosilence demo` as a newcomer runs it: the last line says where to sign in, the API
lists quiet threads each with its draft, and approving one lands in the demo Dovecot's
Drafts folder (or, with --no-imap, is offered for download). Stopping it stops Dovecot."""

from __future__ import annotations

import imaplib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

import httpx
import pytest

from app.demo.dovecot import dovecot_available
from tests.conftest import IN_CI, TEST_SECRET_KEY
from tests.support.processes import CLI, cli_env, free_port, run_cli

pytestmark = pytest.mark.integration
DEMO_LINE = re.compile(
    r"^demo: (?P<url>http://\S+/) email=(?P<email>\S+) password=(?P<password>\S+)$"
)
IMAP_LINE = re.compile(r"^imap: (?P<host>[\d.]+):(?P<port>\d+) .* username=(\S+) password=(\S+) ")
START_BUDGET = 60.0  # a newcomer sees drafts within a minute


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    lines: list[str]
    url: str
    email: str
    password: str
    seconds: float


@contextmanager
def running_demo(tmp_path: Path, *extra: str) -> Iterator[Demo]:
    env = cli_env(database_url=f"sqlite+aiosqlite:///{tmp_path}/rs.db", secret_key=TEST_SECRET_KEY)
    started = time.monotonic()
    log = (tmp_path / "demo.log").open("ab")
    proc = subprocess.Popen(
        [CLI, "demo", "--host", "127.0.0.1", "--port", str(free_port()), *extra],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not (lines and lines[-1].startswith("demo: ")):
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(
                    f"demo exited ({proc.wait()}) without its line:\n"
                    + "".join(lines)
                    + (tmp_path / "demo.log").read_text()
                )
            lines.append(line.rstrip("\n"))
            assert time.monotonic() - started < START_BUDGET, lines
        match = DEMO_LINE.match(lines[-1])
        assert match is not None, lines[-1]
        yield Demo(
            proc=proc,
            lines=lines,
            url=match["url"],
            email=match["email"],
            password=match["password"],
            seconds=time.monotonic() - started,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        finally:
            assert proc.stdout is not None
            proc.stdout.close()
            log.close()


def api_for(demo: Demo, tmp_path: Path) -> httpx.Client:
    env = cli_env(database_url=f"sqlite+aiosqlite:///{tmp_path}/rs.db", secret_key=TEST_SECRET_KEY)
    token = run_cli("token", "create", "--email", demo.email, env=env, cwd=tmp_path)
    assert token.returncode == 0, token.stderr
    return httpx.Client(
        base_url=demo.url,
        headers={"Authorization": f"Bearer {token.stdout.splitlines()[-1]}"},
        timeout=30,
    )


def quiet_threads_each_with_a_draft(api: httpx.Client) -> list[dict[str, object]]:
    quiet = api.get("/api/v1/threads", params={"state": "quiet", "limit": 200}).json()["items"]
    drafts = api.get("/api/v1/drafts", params={"state": "pending", "limit": 200}).json()["items"]
    assert len(quiet) >= 5
    assert sorted(d["thread_id"] for d in drafts) == sorted(t["id"] for t in quiet)
    # Follow-ups 1, 2 and 3 are all due somewhere in the sample.
    assert {t["followups_sent"] + 1 for t in quiet} == {1, 2, 3}
    return list(drafts)


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dovecot_masters(root_prefix: str) -> list[int]:
    """Dovecot masters whose config lies under a demo's scratch folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "dovecot" in cmdline and root_prefix in cmdline and "-F" in cmdline:
                found.append(int(entry.name))
    return found


def test_demo_with_dovecot_approves_into_its_drafts_folder(tmp_path: Path) -> None:
    if not dovecot_available():
        message = "dovecot is not installed: run scripts/install-test-deps.sh (make test does)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with running_demo(tmp_path) as demo, api_for(demo, tmp_path) as api:
        assert demo.seconds < START_BUDGET
        imap_line = next(line for line in demo.lines if line.startswith("imap: "))
        imap = IMAP_LINE.match(imap_line)
        assert imap is not None, imap_line
        assert imap["host"] == "127.0.0.1"
        (mailbox,) = api.get("/api/v1/mailboxes").json()["items"]
        assert mailbox["imap"]["auth_method"] == "password"  # a real IMAP mailbox
        assert mailbox["imap"]["port"] == int(imap["port"])
        masters = dovecot_masters("radiosilence-demo-")

        drafts = quiet_threads_each_with_a_draft(api)
        draft = drafts[0]
        approved = api.post(f"/api/v1/drafts/{draft['id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["delivery"] == "imap_draft"
        assert approved.json()["imap_folder"] == "Drafts"

        conn = imaplib.IMAP4(imap["host"], int(imap["port"]), timeout=10)
        try:
            conn.login(imap[3], imap[4])
            conn.select('"Drafts"', readonly=True)
            typ, data = conn.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        finally:
            conn.logout()
        assert typ == "OK"
        (fetched,) = [item for item in data if isinstance(item, tuple)]
        assert b"\\Draft" in fetched[0]
        msg = message_from_bytes(fetched[1], policy=policy.default)
        assert msg["Message-ID"].strip() == draft["message_id"]
        assert msg["In-Reply-To"] == draft["in_reply_to"]
        assert str(msg["Subject"]) == draft["subject"]
    # Stopped: its Dovecot is gone too.
    assert masters and not any(group_alive(pid) for pid in masters)
    assert dovecot_masters("radiosilence-demo-") == []


def test_demo_without_imap_imports_files_and_offers_downloads(tmp_path: Path) -> None:
    with running_demo(tmp_path, "--no-imap") as demo, api_for(demo, tmp_path) as api:
        assert demo.seconds < START_BUDGET
        assert not any(line.startswith("imap: ") for line in demo.lines)
        (mailbox,) = api.get("/api/v1/mailboxes").json()["items"]
        assert mailbox["imap"]["auth_method"] == "none"  # imported from files

        drafts = quiet_threads_each_with_a_draft(api)
        approved = api.post(f"/api/v1/drafts/{drafts[0]['id']}/approve")
        assert approved.status_code == 200, approved.text
        assert approved.json()["delivery"] == "download"
        raw = api.get(f"/api/v1/drafts/{drafts[0]['id']}/raw")
        assert raw.status_code == 200
        assert b"---------- Forwarded message ---------" in raw.content.replace(b"=\r\n", b"")

        # Run again on the same database: the same user with a new password, the mailbox
        # made afresh, so nothing is doubled.
        first_password = demo.password
    with running_demo(tmp_path, "--no-imap") as again, api_for(again, tmp_path) as api:
        assert again.email == demo.email and again.password != first_password
        assert len(api.get("/api/v1/mailboxes").json()["items"]) == 1
        quiet_threads_each_with_a_draft(api)
