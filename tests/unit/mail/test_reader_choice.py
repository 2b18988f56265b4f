"""Which reader process reads a first sync's next batch (mail.sync.choose_reader): the least
busy, unless one that has the batch's folder selected is at most FOLDER_SLACK batches busier.
A reader moved to another folder costs the server a SELECT and, on Maildir, a scan of the
folder's files; the integration tests (test_sync_reader.py) show that the threads come out
the same whichever reader reads what."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from app.mail.reader import AHEAD
from app.mail.sync import FOLDER_SLACK, choose_reader, interleave


@dataclass
class Reader:
    name: str
    asked: int = 0
    folder: str | None = None


def test_a_reader_that_has_the_folder_selected_reads_on_even_when_a_little_busier() -> None:
    inbox, sent = Reader("a", asked=1 + FOLDER_SLACK, folder="INBOX"), Reader("b", 1, "Sent")
    assert choose_reader([sent, inbox], "INBOX") is inbox


def test_a_reader_too_far_behind_gives_the_folder_to_the_least_busy() -> None:
    inbox, sent = Reader("a", asked=2 + FOLDER_SLACK, folder="INBOX"), Reader("b", 1, "Sent")
    assert choose_reader([inbox, sent], "INBOX") is sent


def test_with_no_reader_in_the_folder_the_least_busy_reads_it() -> None:
    a, b = Reader("a", asked=2, folder="INBOX"), Reader("b", asked=1, folder="Sent")
    fresh = Reader("c", asked=1)
    assert choose_reader([a, b, fresh], "Archive") in (b, fresh)
    assert choose_reader([a, b], "Archive") is b


def test_two_readers_over_two_folders_stay_each_in_one_and_neither_runs_far_ahead() -> None:
    """The first read's batches as the sync asks for them (the folders interleaved by size,
    60 % INBOX and 40 % Sent, AHEAD per reader at once, answered in order): before the
    choice looked at folders, the readers moved between INBOX and Sent at nearly every
    batch."""
    readers = [Reader("a"), Reader("b")]
    order = ["INBOX" if source == 0 else "Sent" for source, _ in interleave([15, 10])]
    pending: deque[Reader] = deque()
    moves = most = 0
    for folder in order:
        while len(pending) >= AHEAD * len(readers):  # the oldest batch is stored first
            pending.popleft().asked -= 1
        reader = choose_reader(readers, folder)
        moves += reader.folder not in (None, folder)
        reader.folder = folder
        reader.asked += 1
        most = max(most, reader.asked)
        pending.append(reader)
    assert moves <= 2, f"{moves} moves between folders for {len(order)} batches"
    assert most <= AHEAD + FOLDER_SLACK
