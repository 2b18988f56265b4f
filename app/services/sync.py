"""Sync a mailbox: take its lease, read new mail, run the rules, record the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import random
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from app import metrics
from app.domain.events import EventType
from app.domain.model import Identity
from app.errors import (
    Conflict,
    MailAuthError,
    MailConnectionError,
    MailHostRefused,
    MailServerError,
    MailTLSError,
    NotFound,
    RadioSilenceError,
)
from app.mail import sync as mail_sync
from app.runtime import worker_id
from app.services.context import Context
from app.services.evaluation import decide_early, end_baseline, evaluate_mailbox
from app.services.followups import create_due_drafts
from app.services.mailbox_views import mailbox_of, public_view
from app.services.mailboxes import open_mailbox_session
from app.storage import mailboxes as store
from app.storage import outbox
from app.storage.engine import reading
from app.storage.mailboxes import MailboxChanges, MailboxRow

log = logging.getLogger(__name__)
AUTH_FAILURE_BACKOFF = timedelta(minutes=30)  # a refused login is not retried in a tight loop
CONNECTION_FAILURE_BACKOFF = timedelta(minutes=5)
RECONNECT_ATTEMPTS = 4  # within one pass, before the mailbox is marked failed
RECONNECT_BASE_DELAY = 1.0  # seconds: 1, 2, 4, 8 (± jitter)
RECONNECT_MAX_DELAY = 30.0
# imapclient's advice: renew IDLE every 10 minutes (RFC 2177 allows up to 29), because NAT
# boxes and proxies drop connections that look idle for longer.
IDLE_RENEW_SECONDS = 600.0
# A first sync decides its threads as it reads until it has stored this many messages (a
# fortnight of a busy rep's mail); the rest wait for the baseline's end.
EARLY_DECISIONS = 20_000


@dataclass(frozen=True, kw_only=True)
class SyncOutcome:
    mailbox_id: int
    folders: int
    new_messages: int
    skipped: int
    threads_evaluated: int
    idle_capable: bool = False


async def sync_mailbox(
    ctx: Context,
    mailbox_id: int,
    *,
    user_id: int | None = None,
    owner: str | None = None,
    wait_for_lease: float = 0.0,
    progress: mail_sync.Progress | None = None,
) -> SyncOutcome:
    """One full pass. Raises Conflict when another worker holds the mailbox after waiting."""
    owner = owner or worker_id()
    async with reading(ctx.engine) as conn:
        mailbox = await store.get_mailbox(conn, mailbox_id, user_id=user_id)
    if mailbox is None:
        raise NotFound(f"no mailbox {mailbox_id}")
    async with _lease(ctx, mailbox_id, owner, wait_for_lease):
        return await _run(ctx, mailbox, progress)


def user_sync(
    ctx: Context, mailbox_id: int, *, user_id: int, wait_for_lease: float
) -> Coroutine[Any, Any, SyncOutcome]:
    """A sync a user asked for (the API's POST …/sync): it takes one of the user's mail slots
    now — RateLimited when none is free — and gives it back when the returned coroutine ends.
    Await it, or hand it to a task at once."""
    ctx.mail_slots.take(user_id)

    async def run() -> SyncOutcome:
        try:
            return await sync_mailbox(
                ctx, mailbox_id, user_id=user_id, wait_for_lease=wait_for_lease
            )
        finally:
            ctx.mail_slots.release(user_id)

    return run()


@contextlib.asynccontextmanager
async def _lease(ctx: Context, mailbox_id: int, owner: str, wait: float) -> AsyncIterator[None]:
    lease = timedelta(seconds=ctx.settings.lease_seconds)
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        async with ctx.engine.begin() as conn:
            if await store.claim_lease(conn, mailbox_id, owner, lease, now=ctx.lease_clock()):
                break
        if asyncio.get_running_loop().time() >= deadline:
            raise Conflict(
                f"mailbox {mailbox_id} is being synced by another worker; try again soon"
            )
        await asyncio.sleep(0.2)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(ctx.settings.lease_seconds / 3)
            try:
                async with ctx.engine.begin() as conn:
                    await store.claim_lease(conn, mailbox_id, owner, lease, now=ctx.lease_clock())
            except Exception:  # a busy database must not end the sync; try again next beat
                log.warning("sync.lease_renewal_failed mailbox=%s", mailbox_id, exc_info=True)

    beat = asyncio.create_task(heartbeat())
    try:
        yield
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        async with ctx.engine.begin() as conn:
            await store.release_lease(conn, mailbox_id, owner)


async def _run(
    ctx: Context, mailbox: MailboxRow, progress: mail_sync.Progress | None
) -> SyncOutcome:
    mailbox_id = mailbox["id"]
    if mailbox["auth_method"] == store.FILE_SOURCE:
        raise Conflict(f"mailbox {mailbox_id} was imported from a file and has no IMAP server")
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        await store.set_status(conn, mailbox_id, "syncing", mailbox["status_message"], now=now)
    ref = mail_sync.MailboxRef(
        id=mailbox_id,
        user_id=mailbox["user_id"],
        identity=Identity.from_addresses(mailbox["addresses"]),
        include=frozenset(mailbox["folder_include"] or ()),
        exclude=frozenset(mailbox["folder_exclude"] or ()),
    )
    options = mail_sync.SyncOptions(
        since=(now - timedelta(days=ctx.settings.sync_lookback_days)).date(),
        batch_size=ctx.settings.sync_batch_size,
        now=now,
        keep_text=ctx.settings.sync_keep_text_prefix,
        executor=ctx.mail_io.executor,
        split_at=ctx.settings.sync_reader_process_at,
        split_into=ctx.settings.sync_reader_processes,
        split_wait=ctx.settings.sync_reader_wait,
    )
    started = asyncio.get_running_loop().time()
    report = mail_sync.SyncReport()  # shared by the attempts: an interrupted pass still counts
    try:
        await _pass_with_retries(ctx, mailbox, ref, options, progress, report)
    except MailServerError as exc:
        metrics.SYNC_PASSES.labels(outcome="failed").inc()
        await _record_failure(ctx, mailbox, exc)
        raise
    finally:
        _count(report)  # what was committed counts, even in a pass that failed later
    if mailbox["baseline"]:  # the first sync (or its resumption) has read everything now
        evaluated = await end_baseline(ctx.engine, ctx.clock, mailbox_id)
    else:
        evaluated = await evaluate_mailbox(ctx.engine, ctx.clock, mailbox_id)
    await create_due_drafts(ctx, mailbox_id)
    async with ctx.engine.begin() as conn:
        done = ctx.clock()
        await store.set_status(conn, mailbox_id, "ok", "", now=done, synced=True)
        # Not when an IDLE watcher made the mailbox due during this pass: that mail may have
        # come after INBOX was read, and must not wait for the next poll.
        await store.schedule_next_sync(
            conn,
            mailbox_id,
            unless_moved_from=mailbox["next_sync_at"],
            at=done + timedelta(seconds=_poll_interval(ctx, mailbox)),
        )
    metrics.SYNC_PASSES.labels(outcome="ok").inc()
    metrics.SYNC_SECONDS.observe(asyncio.get_running_loop().time() - started)
    log.info(
        "sync.done mailbox=%s folders=%s new=%s skipped=%s evaluated=%s %s",
        mailbox_id,
        report.folders,
        report.new_messages,
        report.skipped,
        evaluated,
        report.phases(),
    )
    return SyncOutcome(
        mailbox_id=mailbox_id,
        folders=report.folders,
        new_messages=report.new_messages,
        skipped=report.skipped,
        threads_evaluated=evaluated,
        idle_capable=report.idle_capable,
    )


def _poll_interval(ctx: Context, mailbox: MailboxRow) -> float:
    """A mailbox with a live IDLE watch has its INBOX pushed: its other folders are polled
    less often (500 watched mailboxes polled every 60 s kept a worker 22 % busy)."""
    expires = mailbox["watch_expires_at"]
    if mailbox["watch_owner"] is not None and expires is not None and expires > ctx.clock():
        return max(ctx.settings.sync_interval_watched_seconds, ctx.settings.sync_interval_seconds)
    return ctx.settings.sync_interval_seconds


def _count(report: mail_sync.SyncReport) -> None:
    metrics.SYNC_MESSAGES.inc(report.new_messages)
    metrics.SYNC_SKIPPED.inc(report.skipped)
    for phase, seconds in report.seconds.items():
        metrics.SYNC_PHASE_SECONDS.labels(phase=phase).inc(seconds)


async def _pass_with_retries(
    ctx: Context,
    mailbox: MailboxRow,
    ref: mail_sync.MailboxRef,
    options: mail_sync.SyncOptions,
    progress: mail_sync.Progress | None,
    report: mail_sync.SyncReport,
) -> mail_sync.SyncReport:
    """A dropped connection is reopened with exponential backoff and jitter; the pass resumes
    after the last committed batch. A refused login or a bad certificate is not retried."""
    for attempt in range(RECONNECT_ATTEMPTS + 1):
        try:
            return await _one_pass(ctx, mailbox, ref, options, progress, report)
        except (MailAuthError, MailTLSError):
            raise
        except MailConnectionError as exc:
            if attempt == RECONNECT_ATTEMPTS:
                raise
            delay = _backoff(attempt, RECONNECT_MAX_DELAY)
            log.info("sync.reconnect mailbox=%s in=%.1fs error=%s", ref.id, delay, exc.message)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def _one_pass(
    ctx: Context,
    mailbox: MailboxRow,
    ref: mail_sync.MailboxRef,
    options: mail_sync.SyncOptions,
    progress: mail_sync.Progress | None,
    report: mail_sync.SyncReport,
) -> mail_sync.SyncReport:
    session = await open_mailbox_session(ctx, mailbox, purpose="sync")
    early = _decide_early(ctx, ref.id, report) if mailbox["baseline"] else None
    if options.split_at > 0:  # the reader process of a large first read logs in the same way
        options = replace(options, split=session.sibling)
    try:
        return await mail_sync.sync_mailbox(
            ctx.engine, session, ref, options, progress, report, after_batch=early
        )
    finally:
        await ctx.mail_io.run(session.close)


def _decide_early(
    ctx: Context, mailbox_id: int, report: mail_sync.SyncReport
) -> mail_sync.AfterBatch:
    """A first sync shows the threads of its newest batches (decided, not yet announced)
    while it reads older mail: those of its first EARLY_DECISIONS messages. Not of all of
    them: the baseline's end decides again whatever later batches touched, so deciding every
    batch would decide most threads twice and slow the sync down."""

    async def decide() -> None:
        if report.new_messages <= EARLY_DECISIONS:
            await decide_early(ctx.engine, ctx.clock, mailbox_id)

    return decide


async def watch_for_news(
    ctx: Context,
    mailbox_id: int,
    *,
    owner: str,
    executor: Executor,
    stop: threading.Event,
    on_news: Callable[[int], None],
) -> None:
    """Hold an IDLE connection on the mailbox's INBOX; on new mail, make the mailbox due and
    call `on_news`. Other folders are still polled. Ends on `stop`, or when the login fails
    (the sync records that); a dropped connection is reopened with backoff.

    At most one watcher per mailbox across all workers: it first takes the mailbox's watch
    lease (returning at once if another owner holds a live one), renews it every third of
    `lease_seconds`, stops when the lease is lost (taken over after it ran out, or not
    renewable before it runs out) and releases it when it ends, so that the next sync by any
    worker may start a watcher at once."""
    loop = asyncio.get_running_loop()
    claimed_at = loop.time()
    lease = timedelta(seconds=ctx.settings.lease_seconds)
    async with ctx.engine.begin() as conn:
        if not await store.claim_watch(conn, mailbox_id, owner, lease, now=ctx.lease_clock()):
            log.debug("idle.watched_elsewhere mailbox=%s", mailbox_id)
            return
    log.info("idle.watching mailbox=%s owner=%s", mailbox_id, owner)
    lost = threading.Event()  # set by the heartbeat; read by the IDLE thread too

    def ended() -> bool:
        return stop.is_set() or lost.is_set()

    beat = asyncio.create_task(
        _keep_watch(ctx, mailbox_id, owner, lost, held_until=claimed_at + lease.total_seconds()),
        name=f"idle-lease-{mailbox_id}",
    )
    try:
        await _idle_loop(ctx, mailbox_id, executor, ended, on_news)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        try:
            async with ctx.engine.begin() as conn:
                await store.release_watch(conn, mailbox_id, owner)
        except Exception:  # it runs out by itself after lease_seconds
            log.warning("idle.release_failed mailbox=%s", mailbox_id, exc_info=True)
        log.info("idle.stopped mailbox=%s lost=%s", mailbox_id, lost.is_set())


async def _keep_watch(
    ctx: Context, mailbox_id: int, owner: str, lost: threading.Event, *, held_until: float
) -> None:
    """Renew the watch lease every third of its length; set `lost` when another owner has it,
    or when it could not be renewed and the next beat would come after it runs out (someone
    else may take it then)."""
    loop = asyncio.get_running_loop()
    seconds = ctx.settings.lease_seconds
    while True:
        await asyncio.sleep(seconds / 3)
        started = loop.time()
        try:
            async with asyncio.timeout(seconds / 3), ctx.engine.begin() as conn:
                renewed = await store.claim_watch(
                    conn, mailbox_id, owner, timedelta(seconds=seconds), now=ctx.lease_clock()
                )
        except Exception:  # a busy database must not end the watch while the lease lasts
            log.warning("idle.lease_renewal_failed mailbox=%s", mailbox_id, exc_info=True)
            if loop.time() + seconds / 3 < held_until:  # the next beat still comes in time
                continue
            renewed = False
        if not renewed:
            log.warning("idle.lease_lost mailbox=%s owner=%s", mailbox_id, owner)
            lost.set()
            return
        held_until = started + seconds


async def _idle_loop(
    ctx: Context,
    mailbox_id: int,
    executor: Executor,
    ended: Callable[[], bool],
    on_news: Callable[[int], None],
) -> None:
    loop = asyncio.get_running_loop()
    failures = 0
    while not ended():
        async with reading(ctx.engine) as conn:
            mailbox = await store.get_mailbox(conn, mailbox_id)
        if mailbox is None or mailbox["status"] == "failed":
            return
        try:
            session = await open_mailbox_session(ctx, mailbox, executor=executor, purpose="watch")
            try:
                if not session.has_idle:
                    return
                while not ended():
                    news = await loop.run_in_executor(
                        executor,
                        functools.partial(
                            session.idle_until_news,
                            "INBOX",
                            renew_after=IDLE_RENEW_SECONDS,
                            stop=ended,
                        ),
                    )
                    failures = 0
                    if news:
                        async with ctx.engine.begin() as conn:
                            now = ctx.clock()
                            due = MailboxChanges(next_sync_at=now)
                            await store.update_mailbox(conn, mailbox_id, due, now=now)
                        log.info("idle.news mailbox=%s", mailbox_id)
                        on_news(mailbox_id)
            finally:
                await loop.run_in_executor(executor, session.close)
        except (MailAuthError, MailTLSError, MailHostRefused):  # no retry can change these
            return
        except MailServerError as exc:
            failures += 1
            delay = _backoff(failures, 300.0)
            log.info("idle.reconnect mailbox=%s in=%.1fs error=%s", mailbox_id, delay, exc.message)
            # In steps of about a second, so that a stop or a lost lease ends the wait.
            for _ in range(math.ceil(delay)):
                if ended():
                    return
                await asyncio.sleep(delay / math.ceil(delay))


async def _record_failure(ctx: Context, mailbox: MailboxRow, exc: MailServerError) -> None:
    backoff = AUTH_FAILURE_BACKOFF if isinstance(exc, MailAuthError) else CONNECTION_FAILURE_BACKOFF
    log.warning("sync.failed mailbox=%s error=%s", mailbox["id"], exc.message)
    async with ctx.engine.begin() as conn:
        now = ctx.clock()
        await store.set_status(
            conn, mailbox["id"], "failed", exc.message, now=now, next_sync_at=now + backoff
        )
        if mailbox["status"] != "failed":  # once per change into failed, not per retry
            failed = replace(mailbox_of(mailbox), status="failed", status_message=exc.message)
            await outbox.enqueue(
                conn,
                user_id=mailbox["user_id"],
                type=EventType.MAILBOX_FAILED.value,
                payload={"schema_version": 1, "mailbox": public_view(failed).payload()},
                now=now,
                mailbox_id=mailbox["id"],
            )


def _backoff(attempt: int, cap: float) -> float:
    """Exponential, capped, with jitter: many mailboxes must not reconnect in step."""
    return float(min(cap, RECONNECT_BASE_DELAY * 2**attempt) * (0.5 + random.random()))


def start_sync(
    ctx: Context, tasks: set[asyncio.Task[None]], mailbox_id: int, *, user_id: int
) -> None:
    """A sync in the background of this process (the answer does not wait for it); its
    outcome lands on the mailbox's status. `tasks` keeps it alive until it ends. It takes
    one of the user's mail slots now (RateLimited when none is free), see `user_sync`."""
    sync = user_sync(ctx, mailbox_id, user_id=user_id, wait_for_lease=5)

    async def background() -> None:
        try:
            await sync
        except RadioSilenceError as exc:  # recorded on the mailbox's status already
            log.info("sync.background_failed mailbox=%s error=%s", mailbox_id, exc.message)

    task = asyncio.create_task(background())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
