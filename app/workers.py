"""Long-running loops: mailbox sync runner, IDLE watch keeper, rules scheduler and webhook
dispatcher. `stop()` lets the syncs in hand finish (for a bounded time), closes every IDLE
connection, drains the dispatcher and gives up every lease this process still holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from app.errors import Conflict, RadioSilenceError
from app.runtime import worker_id
from app.services import dispatch, leases, scheduler
from app.services import sync as sync_service
from app.services.context import Context
from app.services.followups import create_due_drafts_everywhere

log = logging.getLogger(__name__)
SCHEDULER_MAX_SLEEP = 30.0  # seconds; new mail wakes it sooner
SCHEDULER_MIN_SLEEP = 0.05  # a check due "now" that another worker holds: do not spin
SYNC_CONCURRENCY = 4  # polls at once
PUSHED_CONCURRENCY = 4  # syncs of mail an IDLE watch announced, at once, besides the polls
SYNC_POLL_SECONDS = 2.0  # due mailboxes (a dead worker's among them) are looked for this often
# Drafts left to compose by syncs this process did not run (an API sync, another worker) or
# by a pass that failed are looked for this often even when nothing else happens.
DRAFTS_RECHECK_SECONDS = 120.0
# A stopping worker finishes what it is sending.
DISPATCH_DRAIN_SECONDS = dispatch.LONGEST_ATTEMPT + 5
# The watch keeper looks for unwatched mailboxes this often (a first sync by any process, the
# API's included, is watched within it) and renews this worker's presence row.
WATCH_SCAN_SECONDS = 2.0
WATCH_CLAIM_BATCH = 50  # watches taken per scan: workers starting together share them out
# A worker not seen for this long no longer counts (at most half a lease, so that a dead
# worker's watches, free once their leases run out, fall within the others' shares by then).
ALIVE_WITHIN_SECONDS = 15.0
WATCH_RETRY_SECONDS = 60.0  # a watch that ended by itself (no IDLE, refused) is retried after
STOP_SYNC_GRACE = 30.0  # a stopping worker finishes its syncs within this, else cancels them
STOP_WATCH_GRACE = 10.0  # IDLE threads notice a stop within IDLE's tick (2 s) and log out


@dataclass
class _Watch:
    task: asyncio.Task[None]
    stop: threading.Event  # read by the IDLE thread too


class Workers:
    def __init__(self, ctx: Context, *, owner: str | None = None) -> None:
        self.ctx = ctx
        self.owner = owner or worker_id()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()  # the sync runner's: new mail, a finished sync, a stop
        self._scan_wake = asyncio.Event()  # the watch keeper's: a sync ended, a stop
        self._rules_wake = asyncio.Event()  # the scheduler's own: a sync or a stop ends its sleep
        self._drafts_due = False  # quiet threads may lack drafts: compose until none is made
        self._tasks: list[asyncio.Task[None]] = []
        self._sync_task: asyncio.Task[None] | None = None
        self._keeper_task: asyncio.Task[None] | None = None
        self._dispatcher: dispatch.Dispatcher | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        self._stop_listening: list[Callable[[], None]] = []
        self._watchers: dict[int, _Watch] = {}
        self._watch_retry_at: dict[int, float] = {}
        self._news: set[int] = set()  # mailboxes whose IDLE watch saw new mail, to sync first
        self._syncing: set[int] = set()  # mailboxes this worker is syncing now
        self._idle_executor: ThreadPoolExecutor | None = None
        self._alive_within = timedelta(
            seconds=min(ALIVE_WITHIN_SECONDS, ctx.settings.lease_seconds / 2)
        )

    @property
    def watched(self) -> list[int]:
        """The mailboxes this worker holds an IDLE watch on (and is not giving up)."""
        return sorted(m for m, w in self._watchers.items() if not w.stop.is_set())

    def start(self) -> None:
        self._dispatcher, stop_listening = dispatch.start_dispatcher(self.ctx, owner=self.owner)
        self._stop_listening.append(stop_listening)
        self._dispatch_task = asyncio.create_task(self._dispatch_loop(), name="webhook-dispatcher")
        self._sync_task = asyncio.create_task(self._sync_loop(), name="sync-runner")
        self._keeper_task = asyncio.create_task(self._watch_loop(), name="watch-keeper")
        self._tasks = [
            self._sync_task,
            self._keeper_task,
            asyncio.create_task(self._scheduler_loop(), name="rules-scheduler"),
            self._dispatch_task,
        ]
        log.info("workers.started owner=%s", self.owner)

    async def stop(self) -> None:
        """Bounded: about STOP_SYNC_GRACE + DISPATCH_DRAIN_SECONDS at worst, seconds usually."""
        self._stop.set()
        self._wake.set()
        self._scan_wake.set()
        self._rules_wake.set()
        for watch in self._watchers.values():
            watch.stop.set()
        # The syncs in hand finish (their batches commit) while the IDLE connections close.
        if self._sync_task is not None:
            await asyncio.wait([self._sync_task], timeout=STOP_SYNC_GRACE)
        if self._watchers:
            await asyncio.wait([w.task for w in self._watchers.values()], timeout=STOP_WATCH_GRACE)
        if self._idle_executor is not None:
            self._idle_executor.shutdown(wait=False, cancel_futures=True)
        for stop_listening in self._stop_listening:
            stop_listening()
        if self._dispatcher is not None and self._dispatch_task is not None:
            self._dispatcher.wake.set()
            await asyncio.wait([self._dispatch_task], timeout=DISPATCH_DRAIN_SECONDS + 1)
        for task in [*self._tasks, *(w.task for w in self._watchers.values())]:
            task.cancel()
        for task in [*self._tasks, *(w.task for w in self._watchers.values())]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._dispatcher is not None:
            await self._dispatcher.aclose()
        await self._give_up_leases()
        log.info("workers.stopped owner=%s", self.owner)

    async def _give_up_leases(self) -> None:
        """Whatever a cancelled sync or a stuck watcher still holds: free it now rather than
        make the other workers wait lease_seconds for it."""
        try:
            released = await leases.release_all(self.ctx, owner=self.owner)
        except Exception:  # the leases run out by themselves
            log.warning("workers.release_failed owner=%s", self.owner, exc_info=True)
            return
        if released:
            log.info("workers.released owner=%s leases=%s", self.owner, released)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    # --- sync ---------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        """Keep up to SYNC_CONCURRENCY polls running, each on a mailbox claimed with its
        lease: claiming only what it can start now leaves the rest to the other workers. New
        mail announced by this worker's IDLE watches is synced first, on slots of its own, so
        a reply never queues behind a backlog of polls."""
        polls: set[asyncio.Task[None]] = set()
        pushed: set[asyncio.Task[None]] = set()
        poll = min(SYNC_POLL_SECONDS, self.ctx.settings.sync_interval_seconds)
        while not self._stop.is_set():
            try:
                for mailbox_id in sorted(self._news - self._syncing):
                    if len(pushed) >= PUSHED_CONCURRENCY:
                        break
                    mine = await leases.claim_sync(self.ctx, mailbox_id, owner=self.owner)
                    if mine:  # else another worker syncs it now: try again after
                        self._news.discard(mailbox_id)
                        self._start_sync(mailbox_id, pushed)
                free = SYNC_CONCURRENCY - len(polls)
                if free > 0:
                    claimed = await leases.claim_due_syncs(self.ctx, owner=self.owner, limit=free)
                    for mailbox_id in claimed:
                        self._start_sync(mailbox_id, polls)
            except Exception:  # a worker loop must survive anything and try again later
                log.exception("workers.sync_loop_error")
            await self._sleep(poll)  # a sync's end, new mail or a stop wakes it sooner
        if polls or pushed:  # the batch in hand: stop() bounds how long it may take
            await asyncio.gather(*polls, *pushed, return_exceptions=True)

    def _start_sync(self, mailbox_id: int, running: set[asyncio.Task[None]]) -> None:
        self._syncing.add(mailbox_id)
        task = asyncio.create_task(self._sync_one(mailbox_id), name=f"sync-{mailbox_id}")
        running.add(task)

        def ended(task: asyncio.Task[None]) -> None:
            running.discard(task)
            self._syncing.discard(mailbox_id)
            self._wake.set()  # a slot is free

        task.add_done_callback(ended)

    async def _sync_one(self, mailbox_id: int) -> None:
        try:
            await sync_service.sync_mailbox(self.ctx, mailbox_id, owner=self.owner)
        except Conflict:
            pass  # another worker has it
        except RadioSilenceError as exc:  # recorded on the mailbox; it backs off by itself
            log.info("workers.sync_failed mailbox=%s error=%s", mailbox_id, exc.message)
        except Exception:
            log.exception("workers.sync_error mailbox=%s", mailbox_id)
        else:
            self._drafts_due = True  # its first drafts page is made; the scheduler makes the rest
        self._rules_wake.set()  # the sync may have set an earlier next check
        self._scan_wake.set()  # a first sync makes the mailbox watchable at once

    # --- IDLE watches ---------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        """Push for INBOX: an IDLE connection per mailbox, from the moment any process's
        first sync of it ends. Each worker takes at most its share (watchable mailboxes /
        live workers, at most RADIOSILENCE_IMAP_IDLE_MAILBOXES) and gives back what exceeds
        it when another worker joins; a dead worker's watches are taken over once their
        leases run out."""
        limit = self.ctx.settings.imap_idle_mailboxes
        if limit == 0:
            return  # poll only; not counted among the workers that share the watches
        with contextlib.suppress(Exception):
            await leases.forget_stale_workers(self.ctx, owner=self.owner)
        while not self._stop.is_set():
            try:
                await self._rebalance(limit)
            except Exception:
                log.exception("workers.watch_loop_error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._scan_wake.wait(), timeout=WATCH_SCAN_SECONDS)
            self._scan_wake.clear()

    async def _rebalance(self, limit: int) -> None:
        census = await leases.watch_census(
            self.ctx, owner=self.owner, alive_within=self._alive_within
        )
        share = min(limit, math.ceil(census.watchable / max(1, census.alive)))
        held = self.watched
        if len(held) > share:  # another worker joined: give back the newest watches
            for mailbox_id in held[share - len(held) :]:
                self._watchers[mailbox_id].stop.set()
            log.info(
                "workers.watch_share owner=%s share=%s gave_back=%s",
                self.owner,
                share,
                len(held) - share,
            )
            return
        want = min(share - len(held), WATCH_CLAIM_BATCH)
        if want <= 0 or self._stop.is_set():
            return
        clock = asyncio.get_running_loop().time()
        self._watch_retry_at = {m: t for m, t in self._watch_retry_at.items() if t > clock}
        skip = set(self._watchers) | set(self._watch_retry_at)
        claimed = await leases.claim_unwatched(self.ctx, owner=self.owner, limit=want, skip=skip)
        for mailbox_id in claimed:
            self._watch(mailbox_id, limit)

    def _watch(self, mailbox_id: int, limit: int) -> None:
        """An IDLE watcher on a mailbox whose watch lease this worker has just taken."""
        if self._idle_executor is None:
            self._idle_executor = ThreadPoolExecutor(max_workers=limit, thread_name_prefix="idle")
        stop = threading.Event()
        if self._stop.is_set():  # claimed while stopping: it ends at once and gives it back
            stop.set()

        def news(_mailbox_id: int) -> None:
            self._news.add(mailbox_id)
            self._wake.set()

        task = asyncio.create_task(
            sync_service.watch_for_news(
                self.ctx,
                mailbox_id,
                owner=self.owner,
                executor=self._idle_executor,
                stop=stop,
                on_news=news,
            ),
            name=f"idle-{mailbox_id}",
        )
        self._watchers[mailbox_id] = _Watch(task=task, stop=stop)

        def ended(task: asyncio.Task[None]) -> None:
            self._watchers.pop(mailbox_id, None)
            if not stop.is_set():  # it ended by itself: no IDLE, a refused login, lost lease
                self._watch_retry_at[mailbox_id] = (
                    asyncio.get_running_loop().time() + WATCH_RETRY_SECONDS
                )
            if not task.cancelled() and (error := task.exception()) is not None:
                log.warning("workers.watch_failed mailbox=%s", mailbox_id, exc_info=error)

        task.add_done_callback(ended)

    # --- rules and webhooks -----------------------------------------------------------------

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
                count = await scheduler.evaluate_due_checks(self.ctx)
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
                earliest = await scheduler.earliest_check(self.ctx)
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
