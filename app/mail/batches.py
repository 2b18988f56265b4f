"""One batch of a folder read from the server and made ready to store: headers fetched,
parsed, threaded and classified, and the start of the bodies that decisions need read at once.
No database: the same code runs in the sync's mail thread and in a first sync's reader
process (`mail.reader`)."""

from __future__ import annotations

import functools
import logging
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from app.domain.incoming import NewMessage
from app.domain.model import Identity
from app.errors import MailConnectionError
from app.mail.pipeline import prepare_message, wants_body, with_body
from app.mail.session import FetchedHeader, MailSession
from app.storage.message_rows import MessageRow, message_row

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class FolderSpec:
    """What reading a batch of one folder needs to know besides its UIDs (picklable: it goes
    to the reader process with each batch)."""

    name: str
    folder_id: int
    identity: Identity
    keep_text: bool
    now: datetime  # the date of a message with neither a Date header nor an INTERNALDATE
    dialect: str  # the database's (SQLAlchemy's name): the rows are encoded for it here
    # A first read's look-back window: of a batch's UIDs, only those that arrived since then
    # are read (one SEARCH a batch, see `ImapSession.window_uids`). None: every UID.
    since: date | None = None


class PhaseSeconds(dict[str, float]):
    """Seconds spent per phase of a sync (`mail.sync.PHASES`), added up."""

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - start)

    def add(self, phase: str, seconds: float) -> None:
        self[phase] = self.get(phase, 0.0) + seconds


@dataclass(kw_only=True)
class ReadBatch:
    """A batch ready to store, the UIDs that could not be read (with why), and where the
    reading's time went."""

    messages: list[MessageRow]
    errors: list[tuple[int, str]]
    bodies_read: int = 0
    # A first read's batch with none of its UIDs in the window (its mail is older): the
    # window's UIDs below the batch, asked at once, so that the rest is not searched batch
    # by batch (a round trip each to a remote server, for mail mostly outside the window).
    rest: array[int] | None = None
    seconds: PhaseSeconds = field(default_factory=PhaseSeconds)


def read_batch(
    session: MailSession,
    folder: FolderSpec,
    uids: list[int],
    uidvalidity: int,
    *,
    selected: str | None,
) -> ReadBatch:
    """Headers of `uids` (those in the folder's window), then the start of the bodies that
    decisions need, read while the folder is selected. `selected`: the folder the session
    has selected now; another is selected first, and must still have the UIDVALIDITY the
    UIDs were planned with."""
    out = ReadBatch(messages=[], errors=[])
    if selected != folder.name:
        with out.seconds.timed("headers"):
            status = session.select(folder.name)
        if status.uidvalidity != uidvalidity:
            # Renumbered since the sync's STATUS: its UIDs mean other messages now. The
            # sync's retry sees it and reads the folder again.
            raise MailConnectionError(f"folder {folder.name} was renumbered during the sync")
    if folder.since is not None and uids:
        with out.seconds.timed("headers"):
            kept = session.window_uids(uids, folder.since)
            if not kept:  # past the window's edge, most likely: the rest of it in one go
                out.rest = session.window_below(min(uids), folder.since)
                return out  # an older stretch of the folder: its position still moves on
        uids = kept
    with out.seconds.timed("headers"):
        fetched = session.fetch_headers(uids)
    with out.seconds.timed("parse"):
        batch = _prepare(fetched, folder, uidvalidity, out.errors)
    batch = _dated(session, batch, out)
    wanted = [m.uid for m in batch if m.uid is not None and wants_body(m)]
    if wanted:
        # Only wanted UIDs are in it; one gone between the two FETCHes is left to the
        # after-pass.
        with out.seconds.timed("bodies"):
            texts = session.fetch_text_prefixes(wanted)
        with out.seconds.timed("parse"):
            batch = [_with_body(m, texts[m.uid], folder) if m.uid in texts else m for m in batch]
        out.bodies_read = len(wanted)
    with out.seconds.timed("parse"):
        out.messages = [message_row(m, folder.dialect) for m in batch]
    return out


def _prepare(
    fetched: list[FetchedHeader],
    folder: FolderSpec,
    uidvalidity: int,
    errors: list[tuple[int, str]],
) -> list[NewMessage]:
    batch: list[NewMessage] = []
    for item in fetched:
        try:
            batch.append(
                prepare_message(
                    item.header,
                    identity=folder.identity,
                    # INTERNALDATE is parsed only for the rare message without a Date
                    fallback_date=functools.partial(_arrival, item, folder.now),
                    folder_id=folder.folder_id,
                    uid=item.uid,
                    uidvalidity=uidvalidity,
                    gm_msgid=item.gm_msgid,
                    gm_thrid=item.gm_thrid,
                )
            )
        except Exception as exc:  # one unreadable message never stops a sync
            log.warning(
                "sync.message_skipped folder=%s uid=%s error=%r", folder.name, item.uid, exc
            )
            errors.append((item.uid, f"{type(exc).__name__}: {exc}"))
    return batch


def _arrival(item: FetchedHeader, now: datetime) -> datetime:
    return item.internal_date or now


def _dated(session: MailSession, batch: list[NewMessage], out: ReadBatch) -> list[NewMessage]:
    """A message whose Date header the parser could not read takes the server's arrival
    time instead: one more FETCH, for those messages only."""
    undated = [m.uid for m in batch if m.facts.date is None and m.uid is not None]
    if not undated:
        return batch
    with out.seconds.timed("headers"):
        arrived = session.fetch_internal_dates(undated)
    return [replace(m, date=arrived[m.uid]) if m.uid in arrived else m for m in batch]


def _with_body(m: NewMessage, text: bytes, folder: FolderSpec) -> NewMessage:
    """Read with its body; one whose body cannot be read is judged by its header alone."""
    try:
        return with_body(m, text, folder.identity, keep_text=folder.keep_text)
    except Exception as exc:  # junk in a body never stops a sync
        log.warning("sync.body_unreadable folder=%s uid=%s error=%r", folder.name, m.uid, exc)
        return m
