"""A large first sync reads on the second core (issue 19): a child process with its own IMAP
login fetches and parses while the sync stores and decides. What a rep sees is the same as
with one process; a reader that cannot log in, or dies mid-sync, loses nothing; a sync killed
mid-way leaves no reader behind."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.mail import imap
from app.mail import sync as mail_sync
from app.mail.reader import NICENESS
from app.services import accounts, followups
from app.services import sync as sync_service
from app.services.context import Context
from app.storage import tables
from tests.factories import REP, ImapUser, make_message, now_utc
from tests.support.crashes import crash_env, expire_lease, killed, mailbox, running, settled, until
from tests.support.dovecot import DovecotServer
from tests.support.history import History, Outcome, outcome, write_history

pytestmark = pytest.mark.integration

QUIET = 8


def readers_of(parent: int) -> list[int]:
    """Pids of live reader processes started by `parent` (`python -m app.mail.reader PID`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(") ")[-1][:1]
        except OSError:  # gone meanwhile
            continue
        if b"app.mail.reader" in argv and str(parent).encode() in argv and state != "Z":
            found.append(int(entry.name))
    return found


def login_recipe(dovecot: DovecotServer) -> imap.SessionRecipe:
    """How a reader process logs in, for a new user of the suite's Dovecot."""
    user = ImapUser.new(dovecot)
    account = imap.ImapAccount(
        host=dovecot.host,
        port=dovecot.port,
        security="plain",
        username=user.username,
        secret=user.password,
    )
    return imap.SessionRecipe(
        account=account,
        ca_file=None,
        timeout=10.0,
        connect_timeout=None,
        allow_plaintext=True,
        addresses=None,
    )


async def _synced(
    ctx: Context, dovecot: DovecotServer, owner: int, name: str, *, reader_at: int
) -> tuple[History, Outcome]:
    """A fresh mailbox with the same kind of history, first-synced in batches of 3 with the
    reader process from `reader_at` messages on (0: never), and its first drafts made."""
    user = ImapUser.new(dovecot)
    history = write_history(dovecot, user.username, now_utc(), quiet=QUIET)
    mailbox_id = await mailbox(ctx, owner, user, name, due_now=False)
    ctx.settings = ctx.settings.model_copy(
        update={
            "sync_batch_size": 3,
            "sync_reader_process_at": reader_at,
            "sync_reader_wait": True,
        }
    )
    await sync_service.sync_mailbox(ctx, mailbox_id)
    await followups.create_due_drafts(ctx, mailbox_id, all_due=True)
    return history, await outcome(ctx.engine, mailbox_id)


async def _owner(ctx: Context) -> int:
    return await accounts.create_user(ctx, email="owner@seller.example", password="pw-123456789")


async def test_a_reader_process_reads_what_one_process_would(
    ctx: Context, dovecot: DovecotServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.mail.reader")
    owner = await _owner(ctx)
    _, alone = await _synced(ctx, dovecot, owner, "Alone", reader_at=0)
    assert "sync.reader_ready" not in caplog.text
    history, split = await _synced(ctx, dovecot, owner, "Split", reader_at=1)

    assert "sync.reader_ready" in caplog.text  # the batches after its login went to it
    assert split.states == history.expected
    assert alone.states == history.expected
    assert split.events == alone.events  # the same announcements, and drafts
    assert not split.baseline
    assert readers_of(os.getpid()) == []  # asked to leave when the sync ended


async def test_a_reader_that_cannot_log_in_leaves_the_sync_to_one_process(
    ctx: Context,
    dovecot: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened = imap.ImapSession.open.__func__  # type: ignore[attr-defined]

    def refused_twice(cls: type[imap.ImapSession], *args: object, **kw: object) -> object:
        session = opened(cls, *args, **kw)
        # As a server that allows one connection per user would: the second login fails.
        recipe = session.sibling
        wrong = dataclasses.replace(recipe.account, secret="not-the-password")
        session.sibling = dataclasses.replace(recipe, account=wrong)
        return session

    monkeypatch.setattr(imap.ImapSession, "open", classmethod(refused_twice))
    caplog.set_level(logging.INFO, logger="app.mail.reader")
    history, seen = await _synced(ctx, dovecot, await _owner(ctx), "Refused", reader_at=1)

    assert "sync.reader_unavailable" in caplog.text
    assert "refused the login" in caplog.text
    assert "not-the-password" not in caplog.text
    assert seen.states == history.expected
    assert not seen.baseline


async def test_a_reader_killed_mid_sync_is_replaced_and_nothing_is_lost(
    ctx: Context,
    dovecot: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await _owner(ctx)
    _, calm = await _synced(ctx, dovecot, owner, "Calm", reader_at=1)
    # The reader kills itself (SIGKILL) as it hands over the 4th batch the sync asked of a
    # reader in this process (the calm sync's asked before: counted on from there).
    asked = next(sync_service.mail_sync._asked)
    monkeypatch.setenv("RADIOSILENCE_TEST_CRASH_AT", f"reading:{asked + 4}")
    monkeypatch.setattr(sync_service, "_backoff", lambda attempt, cap: 0.0)
    caplog.set_level(logging.INFO)
    history, seen = await _synced(ctx, dovecot, owner, "Killed", reader_at=1)

    # The pass that lost it says how; the next pass had a reader of its own.
    assert "the mail reader process stopped: killed by signal 9" in caplog.text
    each = ctx.settings.sync_reader_processes
    assert caplog.text.count("sync.reader_ready") == 2 * each
    assert seen.states == history.expected
    assert seen.events == calm.events  # nothing announced twice, nothing missing
    assert not seen.baseline


async def test_a_sync_killed_mid_way_leaves_no_reader_and_resumes(
    ctx: Context, database_url: str, dovecot: DovecotServer, tmp_path: Path
) -> None:
    owner = await _owner(ctx)
    _, calm = await _synced(ctx, dovecot, owner, "Calm", reader_at=1)
    user = ImapUser.new(dovecot)
    history = write_history(dovecot, user.username, now_utc(), quiet=QUIET)
    killed_id = await mailbox(ctx, owner, user, "Killed", due_now=True)
    env, kind = crash_env(database_url, sync_reader_process_at="1", sync_reader_wait="true")

    # Killed right after the 6th batch's commit: by then the reader has logged in and
    # batches are being read ahead of the store.
    with running(kind, env, tmp_path / "first.log", crash_at="after:6") as first:
        await killed(first)
        dead = first.pid

    async def no_reader_left() -> bool:
        return not readers_of(dead)

    # It notices its parent is gone (its stdin closes, its parent id changes) and leaves.
    await until(no_reader_left, "the reader of the killed sync left")
    assert "sync.reader_ready" in (tmp_path / "first.log").read_text()
    await expire_lease(ctx, killed_id)
    with running(kind, env, tmp_path / "second.log") as second:
        final = await until(lambda: settled(ctx, killed_id, history), "the sync finished")
        assert second.poll() is None

    assert final.states == history.expected == calm.states
    assert final.events == calm.events
    await asyncio.sleep(0)  # (nothing else: the worker is stopped by `running`)


async def test_one_worker_runs_at_most_its_readers_whatever_the_syncs(
    dovecot: DovecotServer,
) -> None:
    recipe = login_recipe(dovecot)
    options = mail_sync.SyncOptions(since=None, now=now_utc(), split=recipe, split_into=2)
    first = mail_sync._reader_processes(options, 100_000)  # a large first sync
    second = mail_sync._reader_processes(options, 100_000)  # another, meanwhile
    try:
        assert len(first) == 2
        assert second == []  # it reads in its own process
        assert len(readers_of(os.getpid())) <= 2
    finally:
        for reader in first + second:
            await reader.close()
    third = mail_sync._reader_processes(options, 100_000)  # the first ended: its turn
    try:
        assert len(third) == 2
        assert mail_sync._reader_processes(options, 4_999) == []  # small: no reader at all
    finally:
        for reader in third:
            await reader.close()
    assert readers_of(os.getpid()) == []


@pytest.mark.parametrize("reader_at", [0, 1], ids=["one process", "reader process"])
async def test_a_first_sync_reads_only_its_window_whatever_the_arrival_order(
    ctx: Context, dovecot: DovecotServer, reader_at: int
) -> None:
    """Each batch of a first read keeps the UIDs that arrived within the look-back window
    (one UID SEARCH SINCE a batch, on whichever connection reads it): mail copied in from an
    archive has old arrival dates among new ones, and stays out. The first batch with none in
    the window asks for the rest of the window below it in one search."""
    owner = await _owner(ctx)
    user = ImapUser.new(dovecot)
    now = now_utc()
    lookback = ctx.settings.sync_lookback_days
    # UIDs 1-9 in batches of 3, newest first: [9, 8, 7] keeps 9 and 7; [6, 5, 4] has none,
    # so the window's rest under 4 is asked at once (UID 1); [3, 2, 1] is cut by it.
    old = lookback + 1
    ages = [3, old + 40, old + 2, old + 10, old + 90, old + 5, 1, old, 2]
    for n, age in enumerate(ages):
        raw = make_message(
            from_="buyer@customer.example",
            to=[REP],
            subject=f"Order {n}",
            date=now - timedelta(days=age),
            message_id=f"order{n}@customer.example",
        )
        dovecot.append(user.username, "INBOX", raw, date=now - timedelta(days=age))
    mailbox_id = await mailbox(ctx, owner, user, "Window", due_now=False)
    ctx.settings = ctx.settings.model_copy(
        update={
            "sync_batch_size": 3,
            "sync_reader_process_at": reader_at,
            "sync_reader_wait": True,
        }
    )

    synced = await sync_service.sync_mailbox(ctx, mailbox_id)

    async with ctx.engine.connect() as conn:
        keys = await conn.scalars(
            select(tables.messages.c.message_key).where(tables.messages.c.mailbox_id == mailbox_id)
        )
        stored = sorted(keys)
    inside = sorted(f"<order{n}@customer.example>" for n, age in enumerate(ages) if age < lookback)
    assert stored == inside and len(inside) == 3
    assert synced.new_messages == 3


async def test_a_reader_process_yields_the_cpu_to_the_process_that_serves_reps(
    dovecot: DovecotServer,
) -> None:
    recipe = login_recipe(dovecot)
    options = mail_sync.SyncOptions(since=None, now=now_utc(), split=recipe, split_into=1)
    [reader] = mail_sync._reader_processes(options, 100_000)
    try:
        await reader.started()
        assert reader.ready  # logged in: it reads, at a lower priority than this process
        [pid] = readers_of(os.getpid())
        ours = os.getpriority(os.PRIO_PROCESS, 0)
        theirs = os.getpriority(os.PRIO_PROCESS, pid)
        assert theirs == min(19, ours + NICENESS)  # 19 is the lowest there is
    finally:
        await reader.close()
    assert readers_of(os.getpid()) == []
