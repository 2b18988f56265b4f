"""One mailbox's sync over an open IMAP session: folder by folder, batch by batch.

Each batch is stored together with its folder's position in one transaction, so a crash or a
dropped connection resumes exactly after the last commit and never stores a message twice.
A folder's first read goes newest first (recent conversations show up at once) and keeps a
low-water mark while it goes; later passes read only UIDs above the high-water mark. A poll
that finds nothing new costs one STATUS per folder.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import itertools
import logging
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from sqlalchemy.ext.asyncio import AsyncEngine

from app.domain.classify import classify
from app.domain.folders import folders_to_sync
from app.domain.model import Classification, Identity
from app.mail import crashpoint
from app.mail.batches import FolderSpec, PhaseSeconds, ReadBatch, read_batch
from app.mail.pipeline import (
    body_bytes,
    classification_details,
    read_body,
)
from app.mail.reader import AHEAD, ReaderProcess
from app.mail.session import FolderStatus, MailSession, SessionOpener
from app.mail.storing import join_orphans_by_subject, store_batch
from app.storage import mailboxes as mailbox_store
from app.storage import messages as message_store
from app.storage.engine import reading
from app.storage.messages import BodyReading
from app.storage.stored_messages import MessageToRead, facts_of_row

P = ParamSpec("P")
T = TypeVar("T")
log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # folder, done, total
AfterBatch = Callable[[], Awaitable[object]]


@dataclass
class SyncReport:
    folders: int = 0
    new_messages: int = 0
    skipped: int = 0
    bodies_read: int = 0
    idle_capable: bool = False  # the server offers IDLE: new mail can be pushed
    # Seconds spent per phase of the header pass (see PHASES). Reading one batch overlaps
    # storing the previous one, so together they exceed the wall time.
    seconds: PhaseSeconds = field(default_factory=PhaseSeconds)

    def phases(self) -> str:
        """`headers=1.20s parse=3.40s …` for the log, in the order the work happens."""
        return " ".join(f"{p}={self.seconds[p]:.2f}s" for p in PHASES if p in self.seconds)


# headers: FETCH of the header fields (and INTERNALDATE where needed); parse: reading headers
# and bodies, classifying; bodies: FETCH of body prefixes; store: threading and writing a
# batch; commit: its COMMIT.
PHASES = ("headers", "parse", "bodies", "store", "commit")


@dataclass(frozen=True, kw_only=True)
class MailboxRef:
    id: int
    user_id: int
    identity: Identity
    include: Collection[str] = ()
    exclude: Collection[str] = ()


@dataclass(frozen=True, kw_only=True)
class SyncOptions:
    since: date | None  # the look-back window of a folder's first read
    batch_size: int = 500
    now: datetime
    keep_text: bool = False  # keep a short text prefix of read bodies (operators debugging)
    # Where the blocking IMAP work runs: the mail thread pool (None: the loop's default).
    executor: Executor | None = None
    # A first read of at least `split_at` messages is read by `split_into` more processes that
    # with `split` (the sync's own login again; picklable), while this one stores.
    split: SessionOpener | None = None
    split_at: int = 5000
    split_into: int = 1
    split_wait: bool = False  # no batch read in this process while the reader logs in


async def _blocking(
    options: SyncOptions, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(options.executor, functools.partial(fn, *args, **kwargs))


async def sync_mailbox(
    engine: AsyncEngine,
    session: MailSession,
    mailbox: MailboxRef,
    options: SyncOptions,
    progress: Progress | None = None,
    report: SyncReport | None = None,
    after_batch: AfterBatch | None = None,
) -> SyncReport:
    """Read every chosen folder from where the last committed batch left it. Counts add up in
    `report` when given (a pass retried after a dropped connection keeps what it did).
    `after_batch` runs after each header batch's commit (a first sync decides its newest
    threads while older mail is still read), overlapping the next batch's reading."""
    listed = await _blocking(options, session.list_folders)
    chosen = folders_to_sync(
        listed, gmail=session.is_gmail, include=mailbox.include, exclude=mailbox.exclude
    )
    async with engine.begin() as conn:
        rows = await mailbox_store.ensure_folders(
            conn, mailbox.id, {f.name: f.special_use for f in chosen}
        )
    report = report or SyncReport()
    report.idle_capable = session.has_idle
    report.folders = 0
    readers = [
        _FolderReader(engine, session, mailbox, rows[f.name], options, report, after_batch)
        for f in chosen
    ]
    # First reads of every folder together, newest batches first across them: the rep's
    # latest sent mail and the latest answers to it arrive (and are decided) in the first
    # seconds, not after the whole INBOX.
    firsts = [(reader, plan) for reader in readers if (plan := await reader.start(progress))]
    others = _reader_processes(options, sum(plan.total for _, plan in firsts))
    if options.split_wait:
        await asyncio.gather(*(other.started() for other in others))
    try:
        await _read_batches(_interleaved(firsts), progress, readers=others)
    finally:
        await asyncio.gather(*(other.close() for other in others))
    for reader, plan in firsts:
        await reader.finish(plan, progress)
    report.folders = len(readers)
    # Join first, then read: an answer that lost its threading headers (a decline, a
    # quote-only "reply") needs its body read once it is in the rep's thread, and must be
    # decided in this sync, not the next one. A poll that found nothing new usually has no
    # orphan and no progress shown: it only reads, never takes the lock.
    async with reading(engine) as conn:
        looking = await message_store.has_pending_orphans(conn, mailbox.id)
        row = await mailbox_store.get_mailbox(conn, mailbox.id)
    if looking:
        async with engine.begin() as conn:
            await join_orphans_by_subject(
                conn, mailbox_id=mailbox.id, identity=mailbox.identity, now=options.now
            )
    await read_bodies(engine, session, mailbox, options, report)
    if row is not None and row["progress"] is not None:
        async with engine.begin() as conn:
            await mailbox_store.set_progress(conn, mailbox.id, None)
    return report


def _reader_processes(options: SyncOptions, messages: int) -> list[ReaderProcess]:
    """Reader processes for a large first read (starting one takes a few hundred ms and an
    IMAP connection more: a poll that finds ten new messages reads them itself), at most
    `split_into` in this process at once, whatever the number of syncs."""
    if options.split is None or messages < options.split_at:
        return []
    return [ReaderProcess(options.split) for _ in range(ReaderProcess.spare(options.split_into))]


BODY_PASS_LIMIT = 2000  # bodies read per slice
# A first read holds every UID of a folder up to this many (4 MB), and cuts them to its
# look-back window batch by batch; a larger folder is cut by one SEARCH up front.
WHOLE_FOLDER_UIDS = 1_000_000
# A folder's first read starts with at most this many (not 4,000), then twice as many…
FIRST_BATCH = 500


async def read_bodies(
    engine: AsyncEngine,
    session: MailSession,
    mailbox: MailboxRef,
    options: SyncOptions,
    report: SyncReport,
) -> None:
    """Read the start of the bodies that decisions need (auto-reply wording and return dates,
    bounce reports, quote-only replies, declines), after the headers of every folder are in:
    only then is it known which inbound mail answers the rep. BODY.PEEK: nothing is marked read.
    """
    while True:  # in slices, so that memory stays bounded however large the backlog
        async with reading(engine) as conn:
            pending = await message_store.messages_needing_body(
                conn, mailbox.id, limit=BODY_PASS_LIMIT
            )
        if not pending:
            return
        await _read_slice(engine, session, mailbox, options, report, pending)


async def _read_slice(
    engine: AsyncEngine,
    session: MailSession,
    mailbox: MailboxRef,
    options: SyncOptions,
    report: SyncReport,
    pending: list[MessageToRead],
) -> None:
    by_folder: dict[str, list[MessageToRead]] = {}
    for row in pending:
        by_folder.setdefault(row.folder_name, []).append(row)
    for folder, rows in by_folder.items():
        with report.seconds.timed("bodies"):
            await _blocking(options, session.select, folder)
            texts = await _blocking(options, session.fetch_text_prefixes, [r.uid for r in rows])
        with report.seconds.timed("parse"):
            readings = [
                (row, _read_body(row, texts.get(row.uid), mailbox, options)) for row in rows
            ]
        with report.seconds.timed("store"):
            async with engine.begin() as conn:
                await message_store.save_body_readings(
                    conn,
                    [
                        BodyReading(
                            message_id=row.id,
                            kind=classification.kind.value,
                            kind_reason=classification.reason,
                            details=details,
                            text_prefix=text,
                        )
                        for row, (classification, details, text) in readings
                    ],
                )
                touched: set[int] = set()
                for row, (classification, _, _) in readings:
                    thread_id = row.thread_id
                    if classification.returned_message_ids:
                        thread_id = await message_store.link_message(
                            conn,
                            mailbox_id=mailbox.id,
                            message_id=row.id,
                            keys=classification.returned_message_ids,
                        )
                    if thread_id is not None:  # a stored message always has one
                        touched.add(thread_id)
                await message_store.mark_threads_dirty(conn, touched, now=options.now)
                crashpoint.batch_stored()
        crashpoint.batch_committed()
        report.bodies_read += len(rows)


def _read_body(
    row: MessageToRead, text: bytes | None, mailbox: MailboxRef, options: SyncOptions
) -> tuple[Classification, dict[str, Any], str | None]:
    facts = facts_of_row(row)
    if text is None:  # expunged since its header was read: judge it by its header for good
        classification = classify(facts, mailbox.identity)
        # What the header said is kept (a delay notice's subkind: the rules ignore it then).
        details = {
            **classification_details(classification),
            "body_read": False,
            "reason": "gone from the server",
        }
        return classification, details, None
    return read_body(facts, mailbox.identity, body_bytes(row, text), keep_text=options.keep_text)


class NewestFirst(Sequence[list[int]]):
    """The ascending `uids` below `below` in batches of `size`, newest batch first, each
    batch newest first and made only when read: a folder's window of a million UIDs stays a
    4 MB array instead of lists of int objects (about 57 MB). With `first`, the newest batch
    holds that many only and each next one twice as many, up to `size` (a first sync shows
    its newest threads sooner, and reaches back a few days in small steps)."""

    def __init__(
        self, uids: array[int], *, below: int, size: int, first: int | None = None
    ) -> None:
        self._uids = uids
        self._end = bisect.bisect_left(uids, below)
        self._size = size
        # The ramp's batch sizes, then `size` for the rest.
        self._ramp: list[int] = []
        step, held = min(first or size, size), 0
        while step < size and held < self._end:
            self._ramp.append(step)
            held, step = held + step, min(step * 2, size)
        self._ramp_uids = held

    @property
    def uids(self) -> int:
        """How many UIDs the batches hold."""
        return self._end

    def __len__(self) -> int:
        rest = max(0, self._end - self._ramp_uids)
        return len(self._ramp) + -(-rest // self._size)

    @overload
    def __getitem__(self, index: int) -> list[int]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[list[int]]: ...

    def __getitem__(self, index: int | slice) -> list[int] | Sequence[list[int]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        if index < len(self._ramp):
            high, size = self._end - sum(self._ramp[:index]), self._ramp[index]
        else:
            back = index - len(self._ramp)
            high, size = self._end - self._ramp_uids - back * self._size, self._size
        return self._uids[max(0, high - size) : high].tolist()[::-1]


def _shown(progress: Progress, folder: str, task: asyncio.Task[tuple[int, int]]) -> None:
    """Progress after a batch's commit (not before: a crash would show work not kept)."""
    if not task.cancelled() and task.exception() is None:
        progress(folder, *task.result())


@dataclass
class _Plan:
    """A folder about to be read: its STATUS, the UID it has been read up to, and for a first
    read (or its resumption) the batches of its look-back window, newest first."""

    status: FolderStatus
    highest: int
    chunks: Sequence[list[int]] | None = None
    top: int = 0
    done: int = 0
    above: Sequence[int] = ()  # UIDs above `top`, to read once the window is read
    total: int = 0  # UIDs in `chunks`
    since: date | None = None  # each batch keeps those of its UIDs that arrived since then
    # Once a batch had none in the window: the window's UIDs below `cut_below` (ascending),
    # by which the batches under it are cut without asking the server again.
    cut: array[int] | None = None
    cut_below: int = 0

    def to_read(self, uids: list[int]) -> tuple[list[int], date | None]:
        """Of a batch's UIDs, those to read, and the window they are still to be searched
        by. Under a batch that had none in the window, the window's rest (searched once)
        has cut them already: none may be left, and none is searched again."""
        cut = self.cut
        if cut is None or uids[0] >= self.cut_below:
            return uids, self.since
        return [uid for uid in uids if _holds(cut, uid)], None


def _holds(ascending: array[int], uid: int) -> bool:
    at = bisect.bisect_left(ascending, uid)
    return at < len(ascending) and ascending[at] == uid


@dataclass(frozen=True)
class _Batch:
    reader: _FolderReader
    plan: _Plan
    uids: list[int]
    position: dict[str, int]


def interleave(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """(source, batch) pairs that walk several newest-first sequences of batches together:
    next comes the source least far through its own batches, so all of them go back in time
    at the same pace (the first source wins ties)."""
    taken = [0] * len(sizes)
    out: list[tuple[int, int]] = []
    for _ in range(sum(sizes)):
        source = min(
            (i for i, size in enumerate(sizes) if taken[i] < size),
            key=lambda i: taken[i] / sizes[i],
        )
        out.append((source, taken[source]))
        taken[source] += 1
    return out


def _interleaved(backfills: Sequence[tuple[_FolderReader, _Plan]]) -> Iterator[_Batch]:
    chunked = [(reader, plan, plan.chunks or ()) for reader, plan in backfills]
    for source, index in interleave([len(chunks) for _, _, chunks in chunked]):
        reader, plan, chunks = chunked[source]
        uids = chunks[index]
        yield _Batch(reader, plan, uids, {"backfill_low_uid": min(uids)})


async def _read_batches(
    batches: Iterable[_Batch],
    progress: Progress | None,
    *,
    selected: str | None = None,
    readers: Sequence[ReaderProcess] = (),
) -> None:
    """Read batch after batch, storing one while the next ones are fetched and parsed: the
    IMAP socket, Dovecot and SQLite's own work then overlap instead of waiting on each other.
    With `readers` (those that have logged in) reading runs on the other core, `AHEAD` batches
    ahead for each. Commits stay in order, one batch at a time, each with its folder position."""
    reads = _Reads(selected, readers)
    pending: deque[tuple[_Batch, asyncio.Future[ReadBatch]]] = deque()
    upcoming = iter(batches)
    storing: asyncio.Task[tuple[int, int]] | None = None
    try:
        while True:
            while len(pending) < reads.ahead and (item := next(upcoming, None)) is not None:
                pending.append((item, reads.start(item)))
            if not pending:
                break
            item, reading = pending.popleft()
            read = await reading  # MailConnectionError if the reader process died under it
            reader_of, plan = item.reader, item.plan
            if read.rest is not None and plan.cut is None:
                plan.cut, plan.cut_below = read.rest, min(item.uids)
            for phase, seconds in read.seconds.items():
                reader_of.report.seconds.add(phase, seconds)
            if storing is not None:
                await storing
            plan.done += len(item.uids)
            storing = asyncio.create_task(
                reader_of._store(read, plan.status, (plan.done, plan.total), item.position)
            )
            if progress:
                storing.add_done_callback(functools.partial(_shown, progress, reader_of.name))
    finally:
        for _, reading in pending:  # a failure: what was asked for ahead is not stored
            reading.cancel()
        await reads.idle()  # the session is free again before anyone closes it
        if storing is not None:
            await storing  # a batch read is never left half-stored, even on a failure


_asked = itertools.count(1)  # batches asked of reader processes (`crashpoint.batch_read`)


class Busy(Protocol):
    """What choosing a reader looks at (a `ReaderProcess`)."""

    @property
    def asked(self) -> int: ...

    @property
    def folder(self) -> str | None: ...


_B = TypeVar("_B", bound=Busy)

# How many more batches a reader that has the folder selected may have waiting than the
# least busy one, and still be given the folder's next batch.
FOLDER_SLACK = 1


def choose_reader(ready: Sequence[_B], folder: str) -> _B:
    """The reader to read a batch of `folder`: the least busy, unless one that has the folder
    selected is at most FOLDER_SLACK batches busier. Moving a reader to another folder costs
    the server a SELECT and, on Maildir, a scan of the folder's files at its next body fetch:
    on the bench's Dovecot, with folders of 40,000-60,000 messages, 10-180 ms and 50-160 ms
    of its CPU, where 300 bodies in the folder already open take 7 ms. Choosing the least
    busy alone moved the two readers between INBOX and Sent at 14 of 29 batches."""
    least = min(ready, key=lambda r: r.asked)
    staying = [r for r in ready if r.folder == folder and r.asked <= least.asked + FOLDER_SLACK]
    return min(staying, key=lambda r: r.asked) if staying else least


class _Reads:
    """Where batches are read: on the sync's own session in a mail thread, one at a time, or
    by the reader processes that have logged in, up to `AHEAD` at once each."""

    def __init__(self, selected: str | None, readers: Sequence[ReaderProcess]) -> None:
        self.selected = selected  # the folder the sync's own session has selected
        self.readers = readers
        self._one_at_a_time = asyncio.Lock()  # asyncio's Lock is first come, first served
        self._threaded: set[asyncio.Task[ReadBatch]] = set()

    def _ready(self) -> list[ReaderProcess]:
        return [r for r in self.readers if r.ready]

    @property
    def ahead(self) -> int:
        return AHEAD * len(self._ready()) or 1

    def start(self, item: _Batch) -> asyncio.Future[ReadBatch]:
        plan = item.plan
        uids, since = plan.to_read(item.uids)
        if not uids:  # none of it in the window: not read at all
            done: asyncio.Future[ReadBatch] = asyncio.get_running_loop().create_future()
            done.set_result(ReadBatch(messages=[], errors=[]))
            return done
        spec = replace(item.reader.spec, since=since)
        if ready := self._ready():
            reader = choose_reader(ready, spec.name)
            return reader.read(spec, uids, plan.status.uidvalidity, next(_asked))
        task = asyncio.create_task(self._in_thread(item, spec, uids))
        self._threaded.add(task)
        task.add_done_callback(self._threaded.discard)
        return task

    async def _in_thread(self, item: _Batch, spec: FolderSpec, uids: list[int]) -> ReadBatch:
        folder = item.reader
        async with self._one_at_a_time:
            selected, self.selected = self.selected, None  # unknown until it has answered
            read = await _blocking(
                folder.options,
                functools.partial(read_batch, selected=selected),
                folder.session,
                spec,
                uids,
                item.plan.status.uidvalidity,
            )
            self.selected = folder.name
            return read

    async def idle(self) -> None:
        """Wait for reads still running in the mail thread (they cannot be interrupted)."""
        if self._threaded:
            await asyncio.gather(*self._threaded, return_exceptions=True)


class _FolderReader:
    def __init__(
        self,
        engine: AsyncEngine,
        session: MailSession,
        mailbox: MailboxRef,
        row: mailbox_store.FolderRow,
        options: SyncOptions,
        report: SyncReport,
        after_batch: AfterBatch | None = None,
    ) -> None:
        self.engine, self.session, self.mailbox = engine, session, mailbox
        self.row, self.options, self.report = row, options, report
        self.after_batch = after_batch
        self.name: str = row["name"]

    async def start(self, progress: Progress | None) -> _Plan | None:
        """STATUS, then a folder read through before reads what came above its position
        (nothing when STATUS says nothing changed); a folder whose first read is still to
        do returns its batches instead, for `_interleaved`, then `finish`."""
        status = await _blocking(self.options, self.session.status, self.name)
        row = self.row
        if row["uidvalidity"] is not None and row["uidvalidity"] != status.uidvalidity:
            # The server renumbered the folder: its old UIDs mean nothing. Read it again; the
            # messages are known by Message-ID, so nothing is stored or announced twice.
            log.info("sync.uidvalidity_changed folder=%s", self.name)
            async with self.engine.begin() as conn:
                await message_store.forget_locations(conn, row["id"])
                await mailbox_store.save_folder_position(
                    conn,
                    row["id"],
                    self.options.now,
                    uidvalidity=status.uidvalidity,
                    highest_uid=0,
                    highest_modseq=None,
                    backfill_top_uid=None,
                    backfill_low_uid=None,
                )
            self.row = row = {
                **row,
                "uidvalidity": status.uidvalidity,
                "highest_uid": 0,
                "highest_modseq": None,
                "backfill_top_uid": None,
                "backfill_low_uid": None,
            }
        elif self._unchanged(status):
            return None
        await _blocking(self.options, self.session.select, self.name)
        highest = int(row["highest_uid"] or 0)
        if highest != 0:  # read through before: what came above it, now
            above = await self._search_above(highest, status)
            await self._read_above(highest, above, status, progress, selected=True)
            return None
        plan = await self._backfill_plan(row, status)
        # Mail above the window's top (come since a first read began) is searched now, while
        # the folder is selected, and read once the window is.
        plan.above = await self._search_above(plan.top, status)
        return plan

    async def finish(self, plan: _Plan, progress: Progress | None) -> None:
        """After the first read's batches: the folder is read up to its top; then whatever
        came above it, also while the window was read (SELECT's UIDNEXT tells)."""
        async with self.engine.begin() as conn:
            await mailbox_store.save_folder_position(
                conn,
                self.row["id"],
                self.options.now,
                highest_uid=plan.top,
                highest_modseq=plan.status.highest_modseq,
                backfill_top_uid=None,
                backfill_low_uid=None,
            )
        now = await _blocking(self.options, self.session.select, self.name)
        above, status = plan.above, plan.status
        seen = max(plan.top, above[-1] if above else 0)
        if now.uidvalidity == status.uidvalidity and (now.uidnext or 0) > seen + 1:
            status = now  # searched after it: every UID below its UIDNEXT is seen
            above = await self._search_above(plan.top, now)
        await self._read_above(plan.top, above, status, progress, selected=True)

    def _unchanged(self, status: FolderStatus) -> bool:
        row = self.row
        if row["uidvalidity"] is None or row["backfill_top_uid"] is not None:
            return False  # never read, or a first read that did not finish
        if status.uidnext is None or status.uidnext > int(row["highest_uid"]) + 1:
            return False
        return status.highest_modseq is None or status.highest_modseq == row["highest_modseq"]

    async def _backfill_plan(self, row: mailbox_store.FolderRow, status: FolderStatus) -> _Plan:
        """The first read: every UID, newest first, resumable from its low-water; each batch
        keeps those in the look-back window when it is read (`_Plan.since`). Not one SEARCH
        SINCE over the whole folder first: the server reads every message's arrival for it,
        and the newest batch, the one the rep waits for, would wait for the oldest."""
        # A folder too large to hold all its UIDs (memory) is cut to its window first.
        whole = status.exists <= WHOLE_FOLDER_UIDS
        uids = await _blocking(
            self.options,
            self.session.search_uids,
            min_uid=1,
            since=None if whole else self.options.since,
            exists=status.exists,
        )
        top = row["backfill_top_uid"]
        if top is None:
            top = uids[-1] if uids else (status.uidnext or 1) - 1
            async with self.engine.begin() as conn:
                await mailbox_store.save_folder_position(
                    conn,
                    row["id"],
                    self.options.now,
                    uidvalidity=status.uidvalidity,
                    highest_uid=0,
                    backfill_top_uid=top,
                    backfill_low_uid=top + 1,
                )
            low = top + 1
        else:
            saved_low = row["backfill_low_uid"]
            assert saved_low is not None  # saved with backfill_top_uid
            low = int(saved_low)
        size = self.options.batch_size
        # The newest batch small: its threads are decided and shown within a second or two.
        chunks = NewestFirst(uids, below=min(low, top + 1), size=size, first=FIRST_BATCH)
        return _Plan(
            status=status,
            highest=0,
            chunks=chunks,
            top=int(top),
            total=chunks.uids,
            since=self.options.since if whole else None,
        )

    async def _search_above(self, highest: int, status: FolderStatus) -> array[int]:
        return await _blocking(
            self.options,
            self.session.search_uids,
            min_uid=highest + 1,
            since=None,
            exists=status.exists,
        )

    async def _read_above(
        self,
        highest: int,
        uids: Sequence[int],
        status: FolderStatus,
        progress: Progress | None,
        *,
        selected: bool,
    ) -> None:
        """The UIDs above the folder's position, oldest first, each batch committed with the
        highest UID it read; then the position up to what STATUS saw."""
        size = self.options.batch_size
        chunks = [list(uids[start : start + size]) for start in range(0, len(uids), size)]
        plan = _Plan(status=status, highest=highest, chunks=chunks, total=len(uids))
        await _read_batches(
            (_Batch(self, plan, chunk, {"highest_uid": chunk[-1]}) for chunk in chunks),
            progress,
            selected=self.name if selected else None,
        )
        # Every UID below UIDNEXT existed when STATUS answered and has been seen by now, so
        # the next poll can tell "nothing new" from STATUS alone, even after expunges.
        final = max(highest, uids[-1] if uids else 0, (status.uidnext or 1) - 1)
        async with self.engine.begin() as conn:
            await mailbox_store.save_folder_position(
                conn,
                self.row["id"],
                self.options.now,
                uidvalidity=status.uidvalidity,
                highest_uid=final,
                highest_modseq=status.highest_modseq,
            )

    @property
    def spec(self) -> FolderSpec:
        return FolderSpec(
            name=self.name,
            folder_id=self.row["id"],
            identity=self.mailbox.identity,
            keep_text=self.options.keep_text,
            now=self.options.now,
            dialect=self.engine.dialect.name,
        )

    async def _store(
        self,
        read: ReadBatch,
        status: FolderStatus,
        done_of: tuple[int, int],
        position: dict[str, int],
    ) -> tuple[int, int]:
        """One batch, the folder's position after it and the progress shown, in one commit."""
        done, total = done_of
        batch, errors = read.messages, read.errors
        async with self.engine.begin() as conn:
            with self.report.seconds.timed("store"):
                stored = await store_batch(
                    conn,
                    mailbox_id=self.mailbox.id,
                    user_id=self.mailbox.user_id,
                    folder_id=self.row["id"],
                    batch=batch,
                    errors=errors,
                    now=self.options.now,
                )
                await mailbox_store.save_folder_position(
                    conn,
                    self.row["id"],
                    self.options.now,
                    uidvalidity=status.uidvalidity,
                    **position,
                )
                await mailbox_store.set_progress(
                    conn, self.mailbox.id, {"folder": self.name, "done": done, "total": total}
                )
                crashpoint.batch_stored()
            committing = time.perf_counter()
        self.report.seconds.add("commit", time.perf_counter() - committing)
        crashpoint.batch_committed()
        self.report.new_messages += stored.new_messages
        self.report.skipped += len(errors)
        self.report.bodies_read += read.bodies_read
        if self.after_batch is not None:
            await self.after_batch()
        return done_of
