"""A test hook for the crash-consistency tests: `RADIOSILENCE_TEST_CRASH_AT=inside:N` kills
this process with SIGKILL while the Nth sync batch it stores (of headers, or of bodies read
after them) is written but not committed; `after:N` right after that batch's commit;
`deciding:N` inside the early decisions that follow the Nth batch. Unset
(always, outside tests), it does nothing.

A process killing itself at a named point makes the chaos test deterministic: a kill from
outside, timed by sleeps or polling, lands wherever the machine's speed puts it."""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("RADIOSILENCE_TEST_CRASH_AT", "")
_WHERE, _, _NTH = _SPEC.partition(":")
_batches = 0


def batch_stored() -> None:
    """Called inside a batch's transaction, after its writes, before its commit."""
    global _batches
    _batches += 1
    _crash_if("inside")


def batch_committed() -> None:
    _crash_if("after")


def decisions_stored() -> None:
    """Called inside the transaction of a first sync's early decisions, before its commit:
    `deciding:N` kills there once N header batches are committed."""
    _crash_if("deciding")


def _crash_if(where: str) -> None:
    if where == _WHERE and _NTH.isdigit() and _batches == int(_NTH):
        os.kill(os.getpid(), signal.SIGKILL)
