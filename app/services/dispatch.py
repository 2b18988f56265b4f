"""The webhook dispatcher as a worker runs it: made for this process (services.webhooks),
woken at once by this process's commits that queue deliveries (others' are polled)."""

from __future__ import annotations

from collections.abc import Callable

from app.services.context import Context
from app.services.webhooks import make_dispatcher
from app.webhooks.deliver import TOTAL_TIMEOUT, wake_on_commit
from app.webhooks.deliver import Dispatcher as Dispatcher  # re-exported: what start returns

LONGEST_ATTEMPT = TOTAL_TIMEOUT  # seconds one delivery attempt may take, at most


def start_dispatcher(ctx: Context, *, owner: str) -> tuple[Dispatcher, Callable[[], None]]:
    """The dispatcher, and the function that stops waking it on commits (call it on stop)."""
    dispatcher = make_dispatcher(ctx, owner=owner)
    return dispatcher, wake_on_commit(ctx.engine, dispatcher.wake.set)
