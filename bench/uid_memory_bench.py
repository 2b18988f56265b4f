"""Memory a first sync holds for one large folder's window of UIDs: the answer to UID SEARCH
read and cut into batches, newest first. Ours (a compact array, batches made as they are
read) against the baseline of the same UIDs held as Python lists (as the sync did before),
measured in this run with tracemalloc over a scripted server answer (no network).

Bar: ours ≤ 0.25 of the baseline at 1,000,000 UIDs (a folder with a million messages in its
window must leave room under the product's 200 MB).
Run: .venv/bin/python bench/uid_memory_bench.py [--uids N]
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.mail.sync import NewestFirst
from tests.support.scripted_imap import session_over

BATCH = 4000  # the sync's default batch size


def answer(count: int) -> bytes:
    # Sparse 10-digit UIDs, as a long-lived Gmail folder has: the longest answer per UID.
    uids = range(1_000_000_000, 1_000_000_000 + 2 * count, 2)
    return b"* SEARCH " + b" ".join(b"%d" % u for u in uids) + b"\r\nT1 OK done\r\n"


def ours(reply: bytes) -> tuple[int, float]:
    session, _ = session_over(reply)
    session.capabilities = frozenset({"IMAP4REV1", "ESEARCH"})
    tracemalloc.reset_peak()
    uids = session.search_uids(min_uid=1, since=date(2026, 1, 1), exists=None)
    batches = NewestFirst(uids, below=uids[-1] + 1, size=BATCH)
    read = sum(len(batch) for batch in batches)
    return read, tracemalloc.get_traced_memory()[1] / 1e6


def baseline(reply: bytes) -> tuple[int, float]:
    session, _ = session_over(reply)
    session.capabilities = frozenset({"IMAP4REV1", "ESEARCH"})
    tracemalloc.reset_peak()
    uids = list(session.search_uids(min_uid=1, since=date(2026, 1, 1), exists=None))
    todo = sorted(uids, reverse=True)
    batches = [todo[start : start + BATCH] for start in range(0, len(todo), BATCH)]
    read = sum(len(batch) for batch in batches)
    return read, tracemalloc.get_traced_memory()[1] / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uids", type=int, default=1_000_000)
    args = parser.parse_args()
    reply = answer(args.uids)
    tracemalloc.start()
    read_base, base_mb = baseline(reply)
    read_ours, ours_mb = ours(reply)
    tracemalloc.stop()
    assert read_base == read_ours == args.uids, (read_base, read_ours)
    ratio = ours_mb / base_mb
    print(f"uids={args.uids} baseline_peak_mb={base_mb:.1f} ours_peak_mb={ours_mb:.1f}")
    print(f"bench: uid_memory ratio={ratio:.3f} ours_mb={ours_mb:.1f} baseline_mb={base_mb:.1f}")
    if ratio > 0.25:
        sys.exit(f"bar missed: ratio {ratio:.3f} > 0.25")


if __name__ == "__main__":
    main()
