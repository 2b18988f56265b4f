"""Load a mailbox's stored mail and replay the rules over it (`radiosilence backtest`)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from app.domain.backtest import Backtest, replay
from app.domain.model import ThreadMessage
from app.errors import InvalidInput, NotFound
from app.services.context import Context
from app.services.evaluation import calendar_of, rules_of, thread_pages
from app.storage import mailboxes as mailbox_store
from app.storage.engine import reading
from app.storage.stored_messages import thread_message

MAX_DAYS = 730


async def backtest_mailbox(ctx: Context, mailbox_id: int, *, days: int = 90) -> Backtest:
    """Replay the mailbox's current rules over the last `days` days of its stored mail."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be between 1 and {MAX_DAYS}, got {days}")
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        mailbox = await mailbox_store.get_mailbox(conn, mailbox_id)
        if mailbox is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        threads: dict[int, list[ThreadMessage]] = {}
        async for _page, rows in thread_pages(conn, mailbox_id):
            for thread_id, messages in rows.items():
                threads[thread_id] = [thread_message(m) for m in messages]
    rules = rules_of(mailbox)
    # Up to yesterday: today is not over yet.
    last_day = now.astimezone(ZoneInfo(mailbox["timezone"])).date() - timedelta(days=1)
    first_day = last_day - timedelta(days=days - 1)
    calendar = calendar_of(mailbox, now, rules, since=first_day)
    return replay(threads, rules, calendar, first_day=first_day, last_day=last_day)
