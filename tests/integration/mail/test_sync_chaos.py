"""Chaos during a first sync ends where a calm run of the same mailbox ends: the same
threads, states and events (ids and timestamps aside).

The serving or worker process kills itself with SIGKILL inside a batch's transaction and
right after a batch's commit (`app.mail.crashpoint`, so the kills land where the test says),
the IMAP server restarts during the resumed sync, and prospects answer meanwhile. On
PostgreSQL two workers run, one of which is killed while it holds the mailbox."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.services import accounts, followups, mailboxes
from app.services import sync as sync_service
from app.services.context import Context
from app.storage.tables import mailboxes as mailbox_table
from app.storage.tables import messages
from tests.conftest import TEST_SECRET_KEY
from tests.factories import ImapUser, now_utc
from tests.support.dovecot import DovecotServer
from tests.support.history import History, Outcome, answer, outcome, write_history
from tests.support.processes import CLI, cli_env, free_port

pytestmark = pytest.mark.integration
QUIET = 8
ANSWERED_MEANWHILE = 3
WAIT = 60.0  # seconds, for any one step; the whole test takes far less


async def test_chaos_during_a_first_sync_ends_like_a_calm_run(
    ctx: Context, database_url: str, dovecot: DovecotServer, tmp_path: Path
) -> None:
    now = now_utc()
    owner = await accounts.create_user(ctx, email="owner@seller.example", password="pw-123456789")

    calm_user = ImapUser.new(dovecot)
    calm = write_history(dovecot, calm_user.username, now, quiet=QUIET)
    answer(dovecot, calm_user.username, calm, ANSWERED_MEANWHILE, now)
    calm_id = await _mailbox(ctx, owner, calm_user, "Calm", due_now=False)
    await sync_service.sync_mailbox(ctx, calm_id)
    await followups.create_due_drafts(ctx, calm_id, all_due=True)
    calm_outcome = await outcome(ctx.engine, calm_id)
    assert calm_outcome.states == calm.expected

    chaos_user = ImapUser.new(dovecot)
    chaos = write_history(dovecot, chaos_user.username, now, quiet=QUIET)
    chaos_id = await _mailbox(ctx, owner, chaos_user, "Chaos", due_now=True)
    env = cli_env(
        database_url=database_url,
        secret_key=TEST_SECRET_KEY,
        sync_batch_size="3",
        sync_interval_seconds="5",
        lease_seconds="10",
    )
    postgres = database_url.startswith("postgresql")
    kind = "worker" if postgres else "serve"

    # 1. Killed inside the second batch's transaction (on PostgreSQL, with a second worker
    #    running, whose scheduler sees the half-read mailbox throughout).
    with _running(kind, env, tmp_path / "first.log", crash_at="inside:2") as first:
        if postgres:
            await _until(lambda: _leased(ctx, chaos_id), "the first worker holds the mailbox")
            with _running(kind, env, tmp_path / "second.log") as second:
                await _killed(first)
                # Prospects answer before the survivor may take over (the dead worker's
                # lease runs out): the baseline it completes has read their answers.
                answer(dovecot, chaos_user.username, chaos, ANSWERED_MEANWHILE, now)
                await _expire_lease(ctx, chaos_id)
                await _restart_imap_mid_sync(ctx, dovecot, chaos_id)
                final = await _until(
                    lambda: _settled(ctx, chaos_id, chaos), "the second worker finished"
                )
                assert second.poll() is None  # it survived the IMAP restart
        else:
            await _killed(first)
    if not postgres:
        await _expire_lease(ctx, chaos_id)
        # 2. Killed right after the fifth commit of the next process.
        with _running(kind, env, tmp_path / "second.log", crash_at="after:5") as again:
            await _killed(again)
        await _expire_lease(ctx, chaos_id)
        # 3. Prospects answer meanwhile; the IMAP server restarts during the resumed sync.
        answer(dovecot, chaos_user.username, chaos, ANSWERED_MEANWHILE, now)
        with _running(kind, env, tmp_path / "third.log") as third:
            await _restart_imap_mid_sync(ctx, dovecot, chaos_id)
            final = await _until(lambda: _settled(ctx, chaos_id, chaos), "the sync finished")
            assert third.poll() is None

    assert final.states == chaos.expected
    assert final.states == calm_outcome.states
    assert final.events == calm_outcome.events
    assert not final.baseline


async def _mailbox(ctx: Context, owner: int, user: ImapUser, name: str, *, due_now: bool) -> int:
    mailbox_id = await mailboxes.create_mailbox(ctx, user_id=owner, data=user.mailbox_input(name))
    # The processes of the test sync the chaos mailbox only; the calm one is synced here.
    due = now_utc() if due_now else now_utc() + timedelta(days=1)
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(mailbox_table).where(mailbox_table.c.id == mailbox_id).values(next_sync_at=due)
        )
    return mailbox_id


@contextmanager
def _running(
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


async def _killed(proc: subprocess.Popen[bytes]) -> None:
    """The process reached its crash point and died of SIGKILL."""
    await _until(lambda: _exited(proc), f"process {proc.pid} crashed")
    assert proc.returncode == -signal.SIGKILL


async def _exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


async def _until(check, what: str):  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + WAIT
    while not (result := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.05)
    return result


async def _leased(ctx: Context, mailbox_id: int) -> bool:
    async with ctx.engine.connect() as conn:
        owner = await conn.scalar(
            select(mailbox_table.c.lease_owner).where(mailbox_table.c.id == mailbox_id)
        )
    return owner is not None


async def _expire_lease(ctx: Context, mailbox_id: int) -> None:
    """What lease_seconds of waiting would do after a crash, without the wait."""
    async with ctx.engine.begin() as conn:
        await conn.execute(
            update(mailbox_table)
            .where(mailbox_table.c.id == mailbox_id)
            .values(lease_expires_at=datetime(2000, 1, 1, tzinfo=now_utc().tzinfo))
        )


async def _stored(ctx: Context, mailbox_id: int) -> int:
    async with ctx.engine.connect() as conn:
        count = await conn.scalar(
            select(func.count()).select_from(messages).where(messages.c.mailbox_id == mailbox_id)
        )
    return int(count or 0)


async def _restart_imap_mid_sync(ctx: Context, dovecot: DovecotServer, mailbox_id: int) -> None:
    """Restart the IMAP server once the resumed sync has committed a batch."""
    before = await _stored(ctx, mailbox_id)

    async def moved() -> bool:
        return await _stored(ctx, mailbox_id) > before

    await _until(moved, "the resumed sync stored a batch")
    dovecot.restart()


async def _settled(ctx: Context, mailbox_id: int, history: History) -> Outcome | None:
    """The outcome once the first sync is over and every quiet thread has its draft."""
    now = await outcome(ctx.engine, mailbox_id)
    drafts = sum(n for (kind, _), n in now.events.items() if kind == "draft.created")
    if now.baseline or drafts < len(history.quiet):
        return None
    return now
