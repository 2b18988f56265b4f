"""A first sync's second core: a child process, with its own IMAP connection, that fetches,
parses and classifies batches (`mail.batches.read_batch`) while the parent stores, threads and
decides the batches before them.

One interpreter cannot do both at once: reading (the socket, imaplib, header parsing,
classifying) and storing (building rows, SQLite's binding, the rules) fought for its lock and
the second core stayed idle. The parent hands the child a folder and UIDs; the child answers
with the batch ready to store (pickled `NewMessage`s, about 14 us a message both ways). At most
`AHEAD` batches are asked for ahead of the one being stored: a bounded queue, so memory stays
bounded however far reading could run ahead.

The child is `python -m app.mail.reader`, talking over its stdin and stdout (length-prefixed
pickles; the login's secret goes that way too, never on its command line or environment). Not
`multiprocessing`: its spawned child imports the parent's main module again (the whole service,
a second or more), where this one imports the parser and imapclient only.

A crash of either side loses nothing: a batch is stored with its folder position in one
commit, by the parent only. The child leaves when its parent is gone (its stdin closes, and it
watches its parent id); the parent that loses its child raises `MailConnectionError`, and the
sync's retry reads on from the last commit with a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import pickle
import struct
import sys
import threading
import time
from collections import deque
from typing import Any

from app.errors import MailConnectionError
from app.mail import crashpoint
from app.mail.batches import FolderSpec, ReadBatch, read_batch
from app.mail.session import MailSession, SessionOpener
from app.runtime import settle_heap

log = logging.getLogger(__name__)

AHEAD = 2  # batches read ahead of the one being stored
PARENT_CHECK_SECONDS = 0.5
STOP_SECONDS = 5.0  # a child that does not leave when asked is killed after this
_FRAME = struct.Struct(">Q")
_LIMIT = 1 << 30  # no batch comes near it: a bigger frame means a broken pipe's garbage
# How much lower the child's CPU priority is than its parent's. The parent stores the batches
# in order, so a first sync waits for it, not for reading, which runs ahead; in `serve` it
# also answers the rep's pages and other mailboxes' syncs. The children take the CPU that is
# left: with two cores shared by the sync, its readers and the IMAP server, bench/sync_bench.py
# went from 12,000 to 13,300-14,500 messages a second, first quiet thread 1.3-1.4 s (was
# 1.8-1.9), every thread decided 10.1-10.7 s (was 11.8-12.2).
NICENESS = 10


class ReaderProcess:
    """The child process of one sync. `ready` once it has logged in; until then (and for
    good if it cannot) the sync reads in its own mail thread."""

    alive = 0  # reader processes of this process's syncs not closed yet

    @classmethod
    def spare(cls, limit: int) -> int:
        """How many more may start when at most `limit` may live in this process at once: a
        second large first sync in the same worker reads with what is left (maybe none,
        then in its own process), so that one rep's mailbox does not take every core."""
        return max(0, limit - cls.alive)

    def __init__(self, recipe: SessionOpener) -> None:
        ReaderProcess.alive += 1
        self._closed = False
        self._recipe = recipe
        self._process: asyncio.subprocess.Process | None = None
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._hello: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting.append(self._hello)
        self._answers: asyncio.Task[None] | None = None
        self._starting = asyncio.create_task(self._start(), name="sync-reader-start")
        self.failed = False
        self.folder: str | None = None  # the folder last asked of it: the one it has selected
        self._announced = False
        self._stopped: MailConnectionError | None = None

    async def _start(self) -> None:
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "app.mail.reader",
                str(os.getpid()),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                limit=1 << 20,
            )
            self._send(("hello", self._recipe))
            self._answers = asyncio.create_task(self._read_answers(), name="sync-reader")
        except Exception as exc:  # no process could be started: read in the thread
            if not self._hello.done():
                self._hello.set_exception(exc)

    @property
    def asked(self) -> int:
        """Batches asked for and not answered yet."""
        return len(self._waiting)

    async def started(self) -> None:
        """Wait until the child has logged in, or failed to."""
        await asyncio.wait([self._hello])

    @property
    def ready(self) -> bool:
        """Logged in and reading. Checked without waiting: the sync's first batches go to the
        mail thread while the child starts (a Python process takes a few hundred ms)."""
        if self.failed or not self._hello.done():
            return False
        error = self._hello.exception()
        if error is not None:
            # A server that allows one connection per user, a login refused the second
            # time…: the sync goes on in one process, as it would have.
            log.info("sync.reader_unavailable error=%s", _why(error))
            self.failed = True
            return False
        if not self._announced:
            self._announced = True
            log.info("sync.reader_ready pid=%s", self._hello.result())
        return True

    def read(
        self, folder: FolderSpec, uids: list[int], uidvalidity: int, sequence: int
    ) -> asyncio.Future[ReadBatch]:
        """Ask for a batch; the answers come in the order they were asked for."""
        if self._stopped is not None:
            raise self._stopped
        if self._answers is None or self._answers.done():
            raise MailConnectionError("the mail reader process stopped")
        future: asyncio.Future[ReadBatch] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self.folder = folder.name
        self._send(("read", folder, uids, uidvalidity, sequence))
        return future

    def _send(self, message: tuple[Any, ...]) -> None:
        assert self._process is not None and self._process.stdin is not None
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._process.stdin.write(_FRAME.pack(len(data)) + data)

    async def _read_answers(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        out = self._process.stdout
        try:
            while True:  # until the child's stdout closes (it stopped, or died)
                (size,) = _FRAME.unpack(await out.readexactly(_FRAME.size))
                if size > _LIMIT or not self._waiting:
                    raise MailConnectionError("the mail reader process sent garbage")
                ok, value = pickle.loads(await out.readexactly(size))  # noqa: S301 - our child
                future = self._waiting.popleft()
                if future.done():  # given up on (a failed sync cancels what it asked ahead)
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except asyncio.IncompleteReadError:  # it exited: say how, to whoever waits
            self._fail(MailConnectionError(await self._ended()))
        except Exception as exc:  # a broken pipe, garbage
            self._fail(exc)

    async def _ended(self) -> str:
        assert self._process is not None
        try:
            code = await asyncio.wait_for(self._process.wait(), STOP_SECONDS)
        except TimeoutError:
            return "its output closed"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def _fail(self, exc: BaseException) -> None:
        error = MailConnectionError(f"the mail reader process stopped: {_why(exc)}")
        self._stopped = self._stopped or error
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        """Stop the child: asked to log out and leave; one still busy after a few seconds is
        killed (all it held is in the parent's database or still on the server)."""
        if not self._closed:
            self._closed = True
            ReaderProcess.alive -= 1
        await self._starting
        process = self._process
        if process is None:
            return
        if process.returncode is None and process.stdin is not None:
            with contextlib.suppress(Exception):
                self._send(("stop",))
                process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), STOP_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._answers is not None:
            self._answers.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._answers
        if self._hello.done() and not self._hello.cancelled():
            self._hello.exception()  # seen: a refused login was logged by `ready`, or moot
        while self._waiting:  # nobody waits for these any more (the sync has ended)
            self._waiting.popleft().cancel()


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


# -- in the child process ------------------------------------------------------------------


def _serve(parent: int, jobs: io.FileIO, answers: io.FileIO) -> None:
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    session: MailSession | None = None
    selected: str | None = None
    try:
        while header := _read_exactly(jobs, _FRAME.size):
            (size,) = _FRAME.unpack(header)
            job = pickle.loads(_read_exactly(jobs, size))  # noqa: S301 - from our parent
            try:
                if job[0] == "hello":
                    session = job[1].open()
                    answer: Any = os.getpid()
                elif job[0] == "read" and session is not None:
                    _, folder, uids, uidvalidity, sequence = job
                    now_selected, selected = selected, None  # unknown until it has answered
                    answer = read_batch(session, folder, uids, uidvalidity, selected=now_selected)
                    selected = folder.name
                    crashpoint.batch_read(sequence)
                else:
                    return  # "stop", or no session to read with
                data = pickle.dumps((True, answer), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # the parent raises it where it waits for the batch
                data = pickle.dumps((False, _portable(exc)), protocol=pickle.HIGHEST_PROTOCOL)
            _write_all(answers, _FRAME.pack(len(data)) + data)
    finally:
        if session is not None:
            session.close()


def _read_exactly(jobs: io.FileIO, size: int) -> bytes:
    """`size` bytes, or b"" at the end (the parent closed our stdin)."""
    parts = []
    while size > 0 and (part := jobs.read(size)):
        parts.append(part)
        size -= len(part)
    return b"".join(parts) if size <= 0 else b""


def _write_all(answers: io.FileIO, data: bytes) -> None:
    """A write to a pipe may take part of the data and say so (seen when the process was
    paused by a profiler mid-write): the rest goes after it, or the frames interleave."""
    view = memoryview(data)
    while view:
        view = view[answers.write(view) or 0 :]


def _portable(exc: Exception) -> Exception:
    """An exception the parent can unpickle and show (ours are; others become their text)."""
    try:
        pickle.loads(pickle.dumps(exc))  # noqa: S301 - made just now
        return exc
    except Exception:
        return MailConnectionError(f"the mail reader failed: {type(exc).__name__}: {exc}")


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    settle_heap()  # as the parent did: fewer collections of the many short-lived values
    os.nice(NICENESS)
    sys.stdout = sys.stderr  # stdout carries the answers: nothing else may write to it
    _serve(int(sys.argv[1]), io.FileIO(0, "rb", closefd=False), io.FileIO(1, "wb", closefd=False))
