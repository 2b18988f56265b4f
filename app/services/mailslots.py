"""How many connection tests, approvals and user-asked syncs one user may run at once.

Each of them may wait on a mail server for a while, holding a mail thread; without a limit
one user pointing fifty requests at a host that never answers took every thread. Beyond
RADIOSILENCE_MAIL_REQUESTS_PER_USER the answer is RateLimited (429 with Retry-After) at once.
The count is per process: with several API processes each has its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from app.errors import RateLimited


class UserSlots:
    def __init__(self, limit: int, *, retry_after: int) -> None:
        self.limit = limit
        self.retry_after = retry_after
        self._busy: dict[int, int] = {}

    def take(self, user_id: int) -> None:
        """One slot for the user, or RateLimited. Pair with `release`. No await between the check
        and the count: on one event loop, taking is atomic."""
        held = self._busy.get(user_id, 0)
        if held >= self.limit:
            raise RateLimited(
                f"you have {held} connection tests, approvals or syncs running already: "
                f"try again in {self.retry_after} s",
                retry_after=self.retry_after,
            )
        self._busy[user_id] = held + 1

    def release(self, user_id: int) -> None:
        held = self._busy.get(user_id, 0) - 1
        if held > 0:
            self._busy[user_id] = held
        else:
            self._busy.pop(user_id, None)

    @contextmanager
    def hold(self, user_id: int) -> Iterator[None]:
        self.take(user_id)
        try:
            yield
        finally:
            self.release(user_id)
