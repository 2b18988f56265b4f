"""The drafts' typed rows name exactly the columns they are built from, so that a column
added to (or renamed in) the tables fails here rather than at the first read."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

from app.services.followups import DraftView, draft_payload
from app.storage.drafts import (
    KEEP,
    DraftChange,
    DraftRow,
    DraftSettings,
    ListedDraft,
    NewDraft,
)
from app.storage.outbox import EventRow
from app.storage.tables import draft_settings, drafts, events

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def test_rows_match_their_tables() -> None:
    assert names(DraftRow) == set(drafts.c.keys())
    assert names(ListedDraft) == set(drafts.c.keys()) - {"raw"}
    assert names(DraftSettings) == set(draft_settings.c.keys()) - {"mailbox_id", "updated_at"}
    assert names(EventRow) == set(events.c.keys())
    # What a new draft leaves to the database and the clock, or has only once reviewed.
    made = {"id", "revision", "created_at", "updated_at", "body"}
    made |= {"dismiss_reason", "snoozed_until"}
    approval = {"delivery", "approved_revision", "imap_folder", "imap_uidvalidity", "imap_uid"}
    assert names(NewDraft) == set(drafts.c.keys()) - made - approval - {"approved_at", "sent_at"}
    assert names(DraftChange) <= set(drafts.c.keys())


def test_a_change_writes_only_what_it_names() -> None:
    assert DraftChange().columns() == {}
    change = DraftChange(state="snoozed", snoozed_until=None, body=None)
    assert change.columns() == {"state": "snoozed", "snoozed_until": None, "body": None}
    assert change.question is KEEP


def _row(**changes: object) -> DraftRow:
    values: dict[str, object] = {
        "id": 7,
        "user_id": 1,
        "mailbox_id": 2,
        "thread_id": 3,
        "step": 1,
        "state": "snoozed",
        "question": "Any news?",
        "body": None,
        "raw": b"",
        "revision": 1,
        "message_id": "<d@x>",
        "forwarded_message_id": "<m@x>",
        "reason": "the proposal",
        "subject": "Re: proposal",
        "from_addr": "rep@x.example",
        "to_addrs": ["buyer@y.example"],
        "cc_addrs": [],
        "skipped_attachments": [],
        "dismiss_reason": None,
        "snoozed_until": NOW,
        "delivery": None,
        "approved_revision": None,
        "imap_folder": None,
        "imap_uidvalidity": None,
        "imap_uid": None,
        "approved_at": None,
        "sent_at": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return DraftRow(**{**values, **changes})


def test_the_event_payload_keeps_the_api_names_in_order() -> None:
    payload = draft_payload(_row(), NOW)
    draft = payload["draft"]
    expected = ["from" if f.name == "from_" else f.name for f in fields(DraftView)]
    assert list(draft) == expected
    assert draft["from"] == "rep@x.example" and draft["to"] == ["buyer@y.example"]
    assert draft["state"] == "pending"  # its snooze ended at NOW
    assert draft["snoozed_until"] == NOW.isoformat()
