"""Who held which IMAP connection when, read from Dovecot's own log.

Radio Silence's sync and watch sessions say who they are (IMAP ID, `x-worker`, `x-purpose`)
and the test Dovecot logs that (`imap_id_log = *`); every session's end is logged as
`Disconnected`. Lines are in the order Dovecot's log process wrote them, which is the order
used here (its timestamps have whole seconds only)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

_SESSION = re.compile(r"imap\((?P<user>[^)]+)\)<\d+><(?P<session>[^>]+)>: Info: (?P<what>.*)$")
_FIELD = re.compile(r"(x-worker|x-purpose)=([^,]+)")


@dataclass(frozen=True)
class Session:
    user: str
    worker: str
    purpose: str
    start: int  # line number of its ID
    end: float  # line number of its Disconnected, inf while still open


def sessions(log_path: Path) -> list[Session]:
    opened: dict[str, tuple[str, str, str, int]] = {}
    done: list[Session] = []
    for number, line in enumerate(log_path.read_text(errors="replace").splitlines()):
        match = _SESSION.search(line)
        if match is None:
            continue
        what, key = match["what"], match["session"]
        if what.startswith("ID sent:"):
            fields = dict(_FIELD.findall(what))
            if "x-worker" in fields:
                opened[key] = (match["user"], fields["x-worker"], fields["x-purpose"], number)
        elif what.startswith("Disconnected") and key in opened:
            user, worker, purpose, start = opened.pop(key)
            done.append(Session(user, worker, purpose, start, number))
    done.extend(Session(u, w, p, s, math.inf) for u, w, p, s in opened.values())
    return done


def overlaps(found: list[Session]) -> list[tuple[Session, Session]]:
    """Pairs of sessions with the same user and purpose, by different workers, open at once."""
    clashes = []
    by_key: dict[tuple[str, str], list[Session]] = {}
    for s in found:
        by_key.setdefault((s.user, s.purpose), []).append(s)
    for group in by_key.values():
        group.sort(key=lambda s: s.start)
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if b.start > a.end:
                    break
                if b.worker != a.worker:
                    clashes.append((a, b))
    return clashes
