"""A first sync shows its newest threads, decided, while it still reads older mail (issue 19),
announces nothing until it has read everything, and survives a SIGKILL at any point of that
(inside the early decisions, or right after a batch's commit) with the threads and events of a
calm run."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.mail import sync as mail_sync
from app.services import accounts, followups
from app.services import sync as sync_service
from app.services.context import Context
from tests.factories import ImapUser, connect, now_utc
from tests.support.crashes import crash_env, expire_lease, killed, mailbox, running, settled, until
from tests.support.dovecot import DovecotServer
from tests.support.history import Outcome, announcements, outcome, write_history

pytestmark = pytest.mark.integration


def _shown_early(seen: Outcome) -> bool:
    """Some thread carries a state while the first sync is on, and nothing is announced."""
    thread_events = [kind for kind, _ in seen.events if kind.startswith("thread.")]
    return seen.baseline and not thread_events and any(seen.states.values())


async def test_the_newest_threads_are_decided_while_older_mail_is_read(
    ctx: Context, imap_user: ImapUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    history = write_history(imap_user.server, imap_user.username, now_utc(), quiet=6)
    _, mailbox_id = await connect(ctx, imap_user)
    ctx.settings = ctx.settings.model_copy(update={"sync_batch_size": 2})
    during: list[Outcome] = []
    store = mail_sync._FolderReader._store

    async def store_and_look(self: Any, *args: Any) -> Any:
        during.append(await outcome(ctx.engine, mailbox_id))  # before each batch's store
        return await store(self, *args)

    monkeypatch.setattr(mail_sync._FolderReader, "_store", store_and_look)
    await sync_service.sync_mailbox(ctx, mailbox_id)

    # Both folders' newest batches come first: quiet threads show before the last batches.
    quiet_at = [n for n, seen in enumerate(during) if "quiet" in seen.states.values()]
    assert quiet_at and quiet_at[0] < len(during) // 2, quiet_at
    assert all(seen.baseline for seen in during)
    assert all(_shown_early(seen) for seen in during[quiet_at[0] :])
    after = await outcome(ctx.engine, mailbox_id)
    assert after.states == history.expected
    assert not after.baseline
    thread_events = Counter({k: n for k, n in after.events.items() if k[0].startswith("thread.")})
    assert thread_events == announcements(history)


async def test_sigkill_mid_first_sync_resumes_to_the_calm_run(
    ctx: Context, database_url: str, dovecot: DovecotServer, tmp_path: Path
) -> None:
    now = now_utc()
    owner = await accounts.create_user(ctx, email="owner@seller.example", password="pw-123456789")
    calm_user = ImapUser.new(dovecot)
    calm = write_history(dovecot, calm_user.username, now, quiet=8)
    calm_id = await mailbox(ctx, owner, calm_user, "Calm", due_now=False)
    await sync_service.sync_mailbox(ctx, calm_id)
    await followups.create_due_drafts(ctx, calm_id, all_due=True)
    calm_outcome = await outcome(ctx.engine, calm_id)
    assert calm_outcome.states == calm.expected

    killed_user = ImapUser.new(dovecot)
    history = write_history(dovecot, killed_user.username, now, quiet=8)
    killed_id = await mailbox(ctx, owner, killed_user, "Killed", due_now=True)
    env, kind = crash_env(database_url)

    # 1. Killed inside the early decisions that follow the third batch: those of the first
    #    two are committed and shown, nothing is announced.
    with running(kind, env, tmp_path / "first.log", crash_at="deciding:3") as first:
        await killed(first)
    assert _shown_early(await outcome(ctx.engine, killed_id))
    await expire_lease(ctx, killed_id)
    # 2. Killed right after a later batch's commit, before its decisions.
    with running(kind, env, tmp_path / "second.log", crash_at="after:4") as second:
        await killed(second)
    assert _shown_early(await outcome(ctx.engine, killed_id))
    await expire_lease(ctx, killed_id)
    # 3. Runs to the end.
    with running(kind, env, tmp_path / "third.log") as third:
        final = await until(lambda: settled(ctx, killed_id, history), "the sync finished")
        assert third.poll() is None

    assert final.states == history.expected == calm_outcome.states
    assert final.events == calm_outcome.events
    assert not final.baseline
