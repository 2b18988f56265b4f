"""Chaos during a first sync ends where a calm run of the same mailbox ends: the same
threads, states and events (ids and timestamps aside).

The serving or worker process kills itself with SIGKILL inside a batch's transaction and
right after a batch's commit (`app.mail.crashpoint`, so the kills land where the test says),
the IMAP server restarts during the resumed sync, and prospects answer meanwhile. On
PostgreSQL two workers run, one of which is killed while it holds the mailbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.services import accounts, followups
from app.services import sync as sync_service
from app.services.context import Context
from app.storage.tables import mailboxes as mailbox_table
from app.storage.tables import messages
from tests.factories import ImapUser, now_utc
from tests.support.crashes import (
    crash_env,
    expire_lease,
    killed,
    mailbox,
    running,
    settled,
    until,
)
from tests.support.dovecot import DovecotServer
from tests.support.history import answer, outcome, write_history

pytestmark = pytest.mark.integration
QUIET = 8
ANSWERED_MEANWHILE = 3


async def test_chaos_during_a_first_sync_ends_like_a_calm_run(
    ctx: Context, database_url: str, dovecot: DovecotServer, tmp_path: Path
) -> None:
    now = now_utc()
    owner = await accounts.create_user(ctx, email="owner@seller.example", password="pw-123456789")

    calm_user = ImapUser.new(dovecot)
    calm = write_history(dovecot, calm_user.username, now, quiet=QUIET)
    answer(dovecot, calm_user.username, calm, ANSWERED_MEANWHILE, now)
    calm_id = await mailbox(ctx, owner, calm_user, "Calm", due_now=False)
    await sync_service.sync_mailbox(ctx, calm_id)
    await followups.create_due_drafts(ctx, calm_id, all_due=True)
    calm_outcome = await outcome(ctx.engine, calm_id)
    assert calm_outcome.states == calm.expected

    chaos_user = ImapUser.new(dovecot)
    chaos = write_history(dovecot, chaos_user.username, now, quiet=QUIET)
    chaos_id = await mailbox(ctx, owner, chaos_user, "Chaos", due_now=True)
    env, kind = crash_env(database_url)
    postgres = kind == "worker"

    # 1. Killed inside the second batch's transaction (on PostgreSQL, with a second worker
    #    running, whose scheduler sees the half-read mailbox throughout).
    with running(kind, env, tmp_path / "first.log", crash_at="inside:2") as first:
        if postgres:
            await until(lambda: _leased(ctx, chaos_id), "the first worker holds the mailbox")
            with running(kind, env, tmp_path / "second.log") as second:
                await killed(first)
                # Prospects answer before the survivor may take over (the dead worker's
                # lease runs out): the baseline it completes has read their answers.
                answer(dovecot, chaos_user.username, chaos, ANSWERED_MEANWHILE, now)
                await expire_lease(ctx, chaos_id)
                await _restart_imap_mid_sync(ctx, dovecot, chaos_id)
                final = await until(
                    lambda: settled(ctx, chaos_id, chaos), "the second worker finished"
                )
                assert second.poll() is None  # it survived the IMAP restart
        else:
            await killed(first)
    if not postgres:
        await expire_lease(ctx, chaos_id)
        # 2. Killed right after the fifth commit of the next process.
        with running(kind, env, tmp_path / "second.log", crash_at="after:5") as again:
            await killed(again)
        await expire_lease(ctx, chaos_id)
        # 3. Prospects answer meanwhile; the IMAP server restarts during the resumed sync.
        answer(dovecot, chaos_user.username, chaos, ANSWERED_MEANWHILE, now)
        with running(kind, env, tmp_path / "third.log") as third:
            await _restart_imap_mid_sync(ctx, dovecot, chaos_id)
            final = await until(lambda: settled(ctx, chaos_id, chaos), "the sync finished")
            assert third.poll() is None

    assert final.states == chaos.expected
    assert final.states == calm_outcome.states
    assert final.events == calm_outcome.events
    assert not final.baseline


async def _leased(ctx: Context, mailbox_id: int) -> bool:
    async with ctx.engine.connect() as conn:
        owner = await conn.scalar(
            select(mailbox_table.c.lease_owner).where(mailbox_table.c.id == mailbox_id)
        )
    return owner is not None


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

    await until(moved, "the resumed sync stored a batch")
    dovecot.restart()
