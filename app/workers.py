"""Long-running loops: mailbox sync runner, rules scheduler and webhook dispatcher. Each stops
on `stop()`; the dispatcher first finishes the deliveries it has in flight."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from app.errors import Conflict, RadioSilenceError
from app.services import sync as sync_service
from app.services.context import Context
from app.services.evaluation import evaluate_due
from app.services.followups import create_due_drafts_everywhere
from app.services.webhooks import make_dispatcher
from app.storage import mailboxes as mailbox_store
from app.storage import threads as thread_store
from app.storage.engine import reading
from app.webhooks.deliver import TOTAL_TIMEOUT, Dispatcher, wake_on_commit

log = logging.getLogger(__name__)
SCHEDULER_MAX_SLEEP = 30.0  # seconds; new mail wakes it sooner
SCHEDULER_MIN_SLEEP = 0.05  # a check due "now" that another worker holds: do not spin
SYNC_CONCURRENCY = 4
# Drafts left to compose by syncs this process did not run (an API sync, another worker) or
# by a pass that failed are looked for this often even when nothing else happens.
DRAFTS_RECHECK_SECONDS = 120.0
DISPATCH_DRAIN_SECONDS = TOTAL_TIMEOUT + 5  # a stopping worker finishes what it is sending


class Workers:
    def __init__(self, ctx: Context, *, owner: str | None = None) -> None:
        self.ctx = ctx
        self.owner = owner or sync_service.worker_id()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._rules_wake = asyncio.Event()  # the scheduler's own: a sync or a stop ends its sleep
        self._drafts_due = False  # quiet threads may lack drafts: compose until none is made
        self._tasks: list[asyncio.Task[None]] = []
        self._dispatcher: Dispatcher | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._stop_listening: list[Callable[[], None]] = []
        self._watchers: dict[int, asyncio.Task[None]] = {}
        self._idle_stop = threading.Event()  # read by the IDLE threads
        self._idle_executor: ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._dispatcher = make_dispatcher(self.ctx, owner=self.owner)
        # Deliveries queued by this process's commits wake the dispatcher; others are polled.
        self._stop_listening.append(wake_on_commit(self.ctx.engine, self._dispatcher.wake.set))
        self._dispatch_task = asyncio.create_task(self._dispatch_loop(), name="webhook-dispatcher")
        self._tasks = [
            asyncio.create_task(self._sync_loop(), name="sync-runner"),
            asyncio.create_task(self._scheduler_loop(), name="rules-scheduler"),
            self._dispatch_task,
        ]
        log.info("workers.started owner=%s", self.owner)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._rules_wake.set()
        self._idle_stop.set()
        if self._watchers:
            await asyncio.wait(list(self._watchers.values()), timeout=10)
        if self._idle_executor is not None:
            self._idle_executor.shutdown(wait=False, cancel_futures=True)
        for stop_listening in self._stop_listening:
            stop_listening()
        if self._dispatcher is not None and self._dispatch_task is not None:
            self._dispatcher.wake.set()
            await asyncio.wait([self._dispatch_task], timeout=DISPATCH_DRAIN_SECONDS + 1)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dispatcher is not None:
            await self._dispatcher.aclose()
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
                outcome = await sync_service.sync_mailbox(self.ctx, mailbox_id, owner=self.owner)
            except Conflict:
                return  # another worker has it
            except RadioSilenceError as exc:  # recorded on the mailbox; it backs off by itself
                log.info("workers.sync_failed mailbox=%s error=%s", mailbox_id, exc.message)
                return
        self._drafts_due = True  # its first drafts page is made; the scheduler makes the rest
        self._rules_wake.set()  # the sync may have set an earlier next check
        if outcome.idle_capable:
            self._watch(mailbox_id)

    def _watch(self, mailbox_id: int) -> None:
        """Push for INBOX: an IDLE connection per mailbox (up to the configured number); new
        mail makes the mailbox due at once instead of at the next poll. The watcher first
        takes the mailbox's watch lease, so only one worker process holds an IDLE connection
        to it; here it ends at once if another has it, and the next sync tries again (a dead
        worker's watch runs out after lease_seconds)."""
        limit = self.ctx.settings.imap_idle_mailboxes
        if mailbox_id in self._watchers or len(self._watchers) >= limit or self._stop.is_set():
            return
        if self._idle_executor is None:
            self._idle_executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="idle")

        def news(_mailbox_id: int) -> None:
            self._wake.set()

        task = asyncio.create_task(
            sync_service.watch_for_news(
                self.ctx,
                mailbox_id,
                owner=self.owner,
                executor=self._idle_executor,
                stop=self._idle_stop,
                on_news=news,
            ),
            name=f"idle-{mailbox_id}",
        )
        self._watchers[mailbox_id] = task

        def ended(task: asyncio.Task[None]) -> None:
            self._watchers.pop(mailbox_id, None)
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning("workers.watch_failed mailbox=%s", mailbox_id, exc_info=error)

        task.add_done_callback(ended)

    async def _scheduler_loop(self) -> None:
        """Evaluate what is due, then sleep until the earliest next_check_at (at most
        SCHEDULER_MAX_SLEEP, for changes made by other processes) or until a sync wakes us."""
        loop = asyncio.get_running_loop()
        drafts_checked = loop.time()
        while not self._stop.is_set():
            delay = SCHEDULER_MAX_SLEEP
            if loop.time() - drafts_checked >= DRAFTS_RECHECK_SECONDS:
                drafts_checked = loop.time()
                self._drafts_due = True
            try:
                async with self.ctx.engine.begin() as conn:
                    count = await evaluate_due(conn, self.ctx.clock())
                if count:
                    log.info("workers.evaluated threads=%s", count)
                    self._drafts_due = True
                    continue  # there may be more due right now
                if self._drafts_due:  # once the backlog is decided: composing waits on IMAP
                    # A page per mailbox and pass, newest quiet first; passes follow one
                    # another while they make drafts, with a decision check in between.
                    self._drafts_due = bool(await create_due_drafts_everywhere(self.ctx))
                    if self._drafts_due:
                        continue
                async with reading(self.ctx.engine) as conn:
                    earliest = await thread_store.earliest_check(conn)
                if earliest is not None:
                    wait = (earliest - self.ctx.clock()).total_seconds()
                    delay = min(max(wait, SCHEDULER_MIN_SLEEP), SCHEDULER_MAX_SLEEP)
            except Exception:
                log.exception("workers.scheduler_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rules_wake.wait(), timeout=delay)
            self._rules_wake.clear()

    async def _dispatch_loop(self) -> None:
        assert self._dispatcher is not None
        while not self._stop.is_set():
            try:
                await self._dispatcher.run(self._stop, drain_seconds=DISPATCH_DRAIN_SECONDS)
            except Exception:  # run() survives the database going away; this is the last net
                log.exception("workers.dispatcher_error")
                await self._sleep(5.0)
