"""Event type names and payloads (the webhook bodies and the event log share them)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from app.domain.model import ThreadState

SCHEMA_VERSION = 1


class EventType(StrEnum):
    THREAD_QUIET = "thread.quiet"
    THREAD_REPLIED = "thread.replied"
    THREAD_PAUSED = "thread.paused"
    THREAD_BOUNCED = "thread.bounced"
    THREAD_CLOSED = "thread.closed"
    THREAD_NEEDS_RESPONSE = "thread.needs_response"
    DRAFT_CREATED = "draft.created"
    DRAFT_APPROVED = "draft.approved"
    MAILBOX_FAILED = "mailbox.failed"


# Entering these states is news to a subscriber; the others are bookkeeping.
_STATE_EVENTS = {
    ThreadState.QUIET: EventType.THREAD_QUIET,
    ThreadState.REPLIED: EventType.THREAD_REPLIED,
    ThreadState.PAUSED: EventType.THREAD_PAUSED,
    ThreadState.BOUNCED: EventType.THREAD_BOUNCED,
    ThreadState.CLOSED: EventType.THREAD_CLOSED,
}


def thread_events(
    *,
    old_state: ThreadState | None,
    new_state: ThreadState,
    old_needs_response: bool,
    new_needs_response: bool,
) -> list[EventType]:
    """The events a change of a thread's state emits: once per change, none when unchanged.

    A thread seen for the first time (old_state None, e.g. on a mailbox's first sync) emits
    only `thread.quiet`, so connecting a mailbox does not replay months of history; its
    `needs_response` flag is visible in the API all the same.
    """
    if old_state is None:
        return [EventType.THREAD_QUIET] if new_state is ThreadState.QUIET else []
    events = []
    if new_state != old_state and new_state in _STATE_EVENTS:
        events.append(_STATE_EVENTS[new_state])
    if new_needs_response and not old_needs_response:
        events.append(EventType.THREAD_NEEDS_RESPONSE)
    return events


def thread_payload(thread: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a thread event: the thread as the API shows it, minus the timeline."""
    return {"schema_version": SCHEMA_VERSION, "thread": thread}
