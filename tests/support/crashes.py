"""Processes of a first sync killed and resumed: the crash-consistency tests' helpers
(`tests/integration/mail/test_sync_chaos.py`, `test_sync_early.py`)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import update

from app.services import mailboxes
from app.services.context import Context
from app.storage.tables import mailboxes as mailbox_table
from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, now_utc
from tests.support.history import History, Outcome, outcome
from tests.support.processes import CLI, cli_env, free_port

WAIT = 60.0  # seconds, for any one step; the whole test takes far less


async def mailbox(ctx: Context, owner: int, user: ImapUser, name: str, *, due_now: bool) -> int:
    mailbox_id = await mailboxes.create_mailbox(ctx, user_id=owner, data=user.mailbox_input(name))
    # The processes of the test sync the chaos mailbox only; the calm one is synced here.
    due = now_utc() if due_now else now_utc() + timedelta(days=1)
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(mailbox_table).where(mailbox_table.c.id == mailbox_id).values(next_sync_at=due)
        )
    return mailbox_id


def crash_env(database_url: str, **settings: str) -> tuple[dict[str, str], str]:
    """The environment of the processes a crash test kills (batches of 3, a poll every 5 s,
    10 s leases, and `settings`), and the command that syncs: `worker` on PostgreSQL,
    `serve` (its workers inside) on SQLite."""
    env = cli_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        sync_batch_size="3",
        sync_interval_seconds="5",
        lease_seconds="10",
        **settings,
    )
    return env, "worker" if database_url.startswith("postgresql") else "serve"


@contextmanager
def running(
    kind: str, env: dict[str, str], log: Path, *, crash_at: str | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    args = [CLI, kind]
    if kind == "serve":
        args += ["--host", "127.0.0.1", "--port", str(free_port())]
    env = dict(env)
    if crash_at:
        env["RADIOSILENCE_TEST_CRASH_AT"] = crash_at
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


async def killed(proc: subprocess.Popen[bytes]) -> None:
    """The process reached its crash point and died of SIGKILL."""
    await until(lambda: exited(proc), f"process {proc.pid} crashed")
    assert proc.returncode == -signal.SIGKILL


async def exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


async def until(check, what: str):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + WAIT
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)
    return result


async def expire_lease(ctx: Context, mailbox_id: int) -> None:
    """What lease_seconds of waiting would do after a crash, without the wait."""
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(mailbox_table)
            .where(mailbox_table.c.id == mailbox_id)
            .values(lease_expires_at=datetime(2000, 1, 1, tzinfo=now_utc().tzinfo))
        )


async def settled(ctx: Context, mailbox_id: int, history: History) -> Outcome | None:
    """The outcome once the first sync is over and every quiet thread has its draft."""
    now = await outcome(ctx.engine, mailbox_id)
    drafts = sum(n for (kind, _), n in now.events.items() if kind == "draft.created")
    if now.baseline or drafts < len(history.quiet):
        return None
    return now
