"""Shared by watch_bench.py and scale_bench.py: a Dovecot on loopback with many users (their
Maildirs written directly, as in sync_bench.py), a fresh PostgreSQL database, Radio Silence
mailboxes for every user, `radiosilence worker` processes, and /proc readings of them."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.config import Settings  # noqa: E402
from app.services import accounts, mailboxes  # noqa: E402
from app.services.context import Context  # noqa: E402
from app.storage.migrate import upgrade  # noqa: E402
from tests.support.dovecot import DovecotServer, start_dovecot  # noqa: E402

REP = "rep@seller.example"
PASSWORD = "bench-password-1"
SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
PG_ADMIN = os.environ.get("RADIOSILENCE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
CLI = str(Path(sys.executable).with_name("radiosilence"))
# Dovecot for hundreds of IDLE connections from one address: an imap process per connection
# (its default limit is 100 here), and login processes reused. All 500 mailboxes belong to one
# system user here, and Linux gives a user 128 inotify instances (fs.inotify.max_user_instances):
# beyond those Dovecot notices new mail only every mailbox_idle_check_interval (30 s by
# default), so it looks every second instead (up to 1 s of the measured latency is Dovecot's).
DOVECOT_TUNING = """
mailbox_idle_check_interval = 1 secs
service imap {
  process_limit = 2000
}
service imap-login {
  service_count = 0
  client_limit = 1000
  process_min_avail = 2
}
default_client_limit = 4000
"""


def username(n: int) -> str:
    return f"rep{n:04d}@seller.example"


def proposal_id(n: int, i: int) -> str:
    return f"<out{n}-{i}@seller.example>"


def _message(headers: list[tuple[str, str]], body: str) -> bytes:
    return (
        "".join(f"{k}: {v}\r\n" for k, v in headers) + "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


def write_mailbox(server: DovecotServer, n: int, messages: int) -> list[int]:
    """`messages` messages over the last 60 days: a third the rep's proposals (Sent), half of
    those answered in INBOX and half sent within the last day (awaiting a reply, not quiet
    yet: no follow-up drafts), the rest newsletters. Returns the unanswered proposals."""
    user = username(n)
    maildir = server.maildir_path(user)
    folders = {"INBOX": maildir, "Sent": maildir / ".Sent"}
    for path in folders.values():
        for sub in ("cur", "new", "tmp"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    now = datetime.now(UTC)
    unanswered = []
    sent_at: dict[int, datetime] = {}
    for i in range(messages):
        date = now - timedelta(days=rng.uniform(2, 60))
        buyer = f"buyer{i}@customer{n}-{i % 7}.example"
        if i % 3 == 0:
            folder = "Sent"
            if i % 2:  # unanswered: sent within the last day, awaiting a reply (not quiet yet)
                date = now - timedelta(hours=rng.uniform(1, 20))
            sent_at[i] = date
            raw = _message(
                [("From", REP), ("To", buyer), ("Subject", f"Proposal {i}"),
                 ("Date", format_datetime(date)), ("Message-ID", proposal_id(n, i))],
                "Here is the proposal.\r\n",
            )  # fmt: skip
            if i % 2:
                unanswered.append(i)
        elif i % 3 == 1 and (i - 1) % 2 == 0:
            folder = "INBOX"
            raw = _message(
                [("From", f"buyer{i - 1}@customer{n}-{(i - 1) % 7}.example"), ("To", REP),
                 ("Subject", f"Re: Proposal {i - 1}"),
                 ("Date", format_datetime(sent_at[i - 1] + timedelta(hours=3))),
                 ("Message-ID", f"<in{n}-{i}@customer.example>"),
                 ("In-Reply-To", proposal_id(n, i - 1)), ("References", proposal_id(n, i - 1))],
                "Sounds good, let us talk.\r\n",
            )  # fmt: skip
        else:
            folder = "INBOX"
            raw = _message(
                [("From", "news@vendor.example"), ("To", REP), ("Subject", f"Newsletter {i}"),
                 ("Date", format_datetime(date)), ("Message-ID", f"<news{n}-{i}@vendor.example>"),
                 ("List-Unsubscribe", "<mailto:unsub@vendor.example>")],
                "This week's news.\r\n",
            )  # fmt: skip
        stamp = int(date.timestamp())
        name = f"{stamp}.M{i}P{n}.bench:2,S"
        (folders[folder] / "cur" / name).write_bytes(raw)
        os.utime(folders[folder] / "cur" / name, (stamp, stamp))
    server.chown_maildir(user)
    return unanswered


def dovecot_with_users(count: int, messages: int) -> tuple[DovecotServer, dict[int, list[int]]]:
    """A tuned Dovecot with `count` users of `messages` messages each, written while it is
    stopped (add_user then does not wait for each login). Returns the server and every
    user's unanswered proposals."""
    server = start_dovecot()
    server.stop()
    with server.config_path.open("a") as config:
        config.write(DOVECOT_TUNING)
    unanswered = {}
    for n in range(count):
        server.add_user(username(n), PASSWORD)
        unanswered[n] = write_mailbox(server, n, messages)
    server.start()
    return server, unanswered


def fresh_database() -> str:
    import asyncpg

    name = f"rs_bench_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    upgrade(url)
    return url


def drop_database(url: str) -> None:
    import asyncpg

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


def settings(url: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        secret_key=SECRET,
        imap_allow_private=True,
        webhook_allow_private=True,
        workers_enabled=False,
    )


async def make_mailboxes(url: str, server: DovecotServer, count: int) -> int:
    """One Radio Silence user with a mailbox per Dovecot user; returns the user's id."""
    ctx = Context.create(settings(url))
    try:
        user_id = await accounts.create_user(
            ctx, email="floor@seller.example", password="pw-123456789"
        )
        for n in range(count):
            data = mailboxes.MailboxInput(
                name=f"Rep {n}", host=server.host, port=server.port, security="plain",
                username=username(n), secret=PASSWORD, auth_method="password",
                addresses=[REP], timezone="UTC", holiday_country=None,
            )  # fmt: skip
            await mailboxes.create_mailbox(ctx, user_id=user_id, data=data, verify=False)
        return user_id
    finally:
        await ctx.close()


def query(url: str, sql: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""), timeout=5)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def worker_env(url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADIOSILENCE_")}
    env.update(
        RADIOSILENCE_DATABASE_URL=url,
        RADIOSILENCE_SECRET_KEY=SECRET,
        RADIOSILENCE_IMAP_ALLOW_PRIVATE="true",
        RADIOSILENCE_WEBHOOK_ALLOW_PRIVATE="true",
        RADIOSILENCE_LOG_LEVEL="WARNING",
    )
    env.update({f"RADIOSILENCE_{k.upper()}": v for k, v in extra.items()})
    return env


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def owner(self) -> str:
        import socket

        return f"{socket.gethostname()}:{self.proc.pid}"

    def stop(self, timeout: float = 90) -> float:
        """SIGTERM; seconds until it exited."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return time.monotonic() - started


@contextmanager
def workers(url: str, count: int, folder: Path, **extra: str) -> Iterator[list[Worker]]:
    started = []
    try:
        for i in range(count):
            started.append(start_worker(url, folder / f"worker{i}.log", **extra))
        yield started
    finally:
        for w in started:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()


def start_worker(url: str, log: Path, **extra: str) -> Worker:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CLI, "worker"], env=worker_env(url, **extra), stdout=out, stderr=out
        )
    return Worker(proc, log)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def group_cpu_seconds(pids: list[int]) -> float:
    """CPU time of these processes and of their children that have ended (a Dovecot master or
    the postmaster reaps one process per connection: their time is in its cutime/cstime)."""
    total = 0.0
    for pid in pids:
        with suppress(FileNotFoundError, ProcessLookupError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def postgres_pids() -> list[int]:
    """The machine's PostgreSQL processes (shared with whatever else uses it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def wait_until(check: Any, seconds: float, what: str, step: float = 0.5) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > seconds:
            raise SystemExit(f"bench: gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - started
