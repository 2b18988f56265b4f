"""Pushed mail: with IDLE, a reply in INBOX is read within seconds, not at the next poll."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from app.services import threads
from app.services.context import Context
from app.workers import Workers
from tests.factories import PROSPECT, REP, ImapUser, connect, make_message, now_utc, populate

pytestmark = pytest.mark.integration


async def state_of(ctx: Context, user_id: int, root: str) -> str | None:
    items, _ = await threads.list_threads(ctx, user_id=user_id, limit=200)
    return next((t.state for t in items if t.message_ids[0] == root), None)


async def wait_for(check: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.2)
    return False


async def test_a_reply_is_pushed_by_idle(ctx: Context, imap_user: ImapUser) -> None:
    now = now_utc()
    scenario = populate(imap_user, now)
    ctx.settings = ctx.settings.model_copy(update={"sync_interval_seconds": 600})
    user_id, mailbox_id = await connect(ctx, imap_user)
    workers = Workers(ctx)
    workers.start()
    try:
        assert await wait_for(
            lambda: _is(state_of(ctx, user_id, scenario.awaiting), "awaiting_reply"), 20
        )
        assert await wait_for(lambda: _watching(workers, mailbox_id), 10)
        await asyncio.sleep(0.5)  # let the watcher enter IDLE
        imap_user.server.append(
            imap_user.username,
            "INBOX",
            make_message(
                from_=PROSPECT,
                to=[REP],
                subject="Re: Next steps",
                date=now + timedelta(minutes=1),
                message_id="pushed@buyer.example",
                references=["a1@seller.example"],
            ),
            date=now,
        )
        # The poll interval is ten minutes: only IDLE can bring this in within seconds.
        assert await wait_for(lambda: _is(state_of(ctx, user_id, scenario.awaiting), "replied"), 20)
    finally:
        await workers.stop()


async def _is(value: object, expected: str) -> bool:
    return await value == expected  # type: ignore[misc]


async def _watching(workers: Workers, mailbox_id: int) -> bool:
    return mailbox_id in workers._watchers
