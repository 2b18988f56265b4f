"""A test hook for the crash-consistency tests: `RADIOSILENCE_TEST_CRASH_AT=inside:N` kills
this process with SIGKILL while the Nth sync batch it stores (of headers, or of bodies read
after them) is written but not committed; `after:N` right after that batch's commit;
`deciding:N` inside the early decisions that follow the Nth batch; `reading:N` kills a first
sync's reader process (`mail.reader`) as it hands over the Nth batch its parent asked it
for (counted by the parent, so a retry's new reader does not die again). Unset
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


def batch_read(sequence: int) -> None:
    """Called in a reader process with the parent's count of batches asked for."""
    if _WHERE == "reading" and _NTH.isdigit() and sequence == int(_NTH):
        os.kill(os.getpid(), signal.SIGKILL)


def _crash_if(where: str) -> None:
    if where == _WHERE and _NTH.isdigit() and _batches == int(_NTH):
        os.kill(os.getpid(), signal.SIGKILL)
