"""The rules scheduler's two questions: decide the threads whose check is due now, and when
the next check falls due (app.workers sleeps until then)."""

from __future__ import annotations

from datetime import datetime

from app.services.context import Context
from app.services.evaluation import evaluate_due
from app.storage import threads as thread_store
from app.storage.engine import reading


async def evaluate_due_checks(ctx: Context) -> int:
    """One page of due threads decided in one transaction; how many were looked at."""
    async with ctx.engine.begin() as conn:
        return await evaluate_due(conn, ctx.clock())


async def earliest_check(ctx: Context) -> datetime | None:
    """Now when a thread has new mail, else the first next_check_at; None when none is set."""
    async with reading(ctx.engine) as conn:
        return await thread_store.earliest_check(conn, now=ctx.clock())
