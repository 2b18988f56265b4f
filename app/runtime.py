"""Process-wide tuning done once at start-up, after the imports and before the work."""

from __future__ import annotations

import gc
import os
import resource
import socket

# Young objects are collected every 50,000 allocations instead of every 700: a first sync
# allocates millions of short-lived objects (header fields, rows) and almost none form cycles.
_GC_THRESHOLDS = (50_000, 20, 100)
_settled = False


def settle_heap() -> None:
    """Move everything alive now (modules, SQLAlchemy's and FastAPI's tables, compiled
    regexes) out of the cyclic collector's sight, so that its full collections walk only
    what the work itself keeps, and make young collections rarer. Once per process: a full
    collection is costly where many apps start in one process (the tests)."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


def worker_id() -> str:
    """This process, as leases, the workers table and IMAP ID name it: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def raise_open_files_limit(wanted: int = 65536) -> int:
    """A worker holds an IMAP connection per watched mailbox besides its database pool: lift
    the soft limit on open files (often 1024) towards the hard one. Returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft
