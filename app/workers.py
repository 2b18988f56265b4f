"""Long-running loops: mailbox sync runner and rules scheduler. Each stops on `stop()`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.errors import Conflict, RadioSilenceError
from app.services import sync as sync_service
from app.services.context import Context
from app.services.evaluation import evaluate_due
from app.storage import mailboxes as mailbox_store
from app.storage.engine import reading

log = logging.getLogger(__name__)
SCHEDULER_MAX_SLEEP = 30.0  # seconds; new mail wakes it sooner
SYNC_CONCURRENCY = 4


class Workers:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.owner = sync_service.worker_id()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="sync-runner"),
            asyncio.create_task(self._scheduler_loop(), name="rules-scheduler"),
        ]
        log.info("workers.started owner=%s", self.owner)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        log.info("workers.stopped owner=%s", self.owner)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _sync_loop(self) -> None:
        limit = asyncio.Semaphore(SYNC_CONCURRENCY)
        while not self._stop.is_set():
            try:
                async with reading(self.ctx.engine) as conn:
                    due = await mailbox_store.due_for_sync(conn, self.ctx.clock(), limit=20)
                await asyncio.gather(*(self._sync_one(m, limit) for m in due))
            except Exception:  # a worker loop must survive anything and try again later
                log.exception("workers.sync_loop_error")
            await self._sleep(min(5.0, self.ctx.settings.sync_interval_seconds))

    async def _sync_one(self, mailbox_id: int, limit: asyncio.Semaphore) -> None:
        async with limit:
            try:
                await sync_service.sync_mailbox(self.ctx, mailbox_id, owner=self.owner)
            except Conflict:
                return  # another worker has it
            except RadioSilenceError as exc:  # recorded on the mailbox; it backs off by itself
                log.info("workers.sync_failed mailbox=%s error=%s", mailbox_id, exc.message)

    async def _scheduler_loop(self) -> None:
        while not self._stop.is_set():
            try:
                async with self.ctx.engine.begin() as conn:
                    count = await evaluate_due(conn, self.ctx.clock())
                if count:
                    log.info("workers.evaluated threads=%s", count)
                    continue  # there may be more due right now
            except Exception:
                log.exception("workers.scheduler_error")
            await self._sleep(SCHEDULER_MAX_SLEEP)
