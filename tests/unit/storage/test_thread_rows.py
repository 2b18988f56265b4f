"""The typed thread rows: their fields are the table's columns, a patch writes only what it
names, and the mappers and views carry every value through."""

from __future__ import annotations

from dataclasses import asdict, fields, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.api.schemas import MessageOut, ThreadOut
from app.domain.model import MessageKind, Subkind
from app.services.threads import MessageView, decided_view, thread_view
from app.storage import threads as store
from app.storage.outbox import NewEvent
from app.storage.stored_messages import thread_message
from app.storage.tables import messages, threads

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def a_thread(**changes: object) -> store.ThreadRow:
    values: dict[str, object] = {
        "id": 7,
        "mailbox_id": 3,
        "user_id": 1,
        "subject": "Offer",
        "subject_key": "offer",
        "state": "quiet",
        "reason": "quiet: 5 business days",
        "needs_response": False,
        "last_outbound_at": NOW - timedelta(days=7),
        "last_inbound_at": None,
        "next_check_at": NOW + timedelta(days=1),
        "followups_sent": 1,
        "snoozed_until": None,
        "closed_reason": None,
        "dirty": False,
        "created_at": NOW - timedelta(days=8),
        "updated_at": NOW - timedelta(hours=1),
        "answered_at": None,
        "answered_note": None,
        "reopened_at": None,
    }
    return store.ThreadRow(**(values | changes))  # type: ignore[arg-type]


def test_a_thread_row_has_exactly_the_tables_columns() -> None:
    assert names(store.ThreadRow) == set(threads.c.keys())


def test_the_rows_built_for_every_decided_thread_behave_as_dataclasses() -> None:
    """RuleThread, ThreadRow, Decided, DecisionInput and NewEvent take `cheap_init`'s
    __init__: every field set, defaults kept, frozen, equal by value, unknown names refused."""
    thread = a_thread()
    base = store.RuleThread(**{n: getattr(thread, n) for n in names(store.RuleThread)})
    decided = store.Decided(**{n: getattr(thread, n) for n in names(store.Decided)})
    read = store.DecisionInput(
        messages=(),
        shown_ids=["<a@x>"],
        subject="Offer",
        last_outbound_at=NOW,
        last_inbound_at=None,
    )
    event = NewEvent(user_id=1, type="thread.quiet", payload={"n": 1})
    for row in (thread, base, decided, read, event):
        cls = type(row)
        values = {n: getattr(row, n) for n in names(cls)}
        assert cls(**values) == row and asdict(cls(**values)) == asdict(row)
        assert replace(row) == row
        with pytest.raises(AttributeError):  # frozen
            row.id = 1  # type: ignore[misc, union-attr]
        with pytest.raises(TypeError):
            cls(**values, not_a_field=1)
    assert thread != replace(thread, updated_at=NOW) and base != thread
    assert read.may_await_body is False and (event.mailbox_id, event.thread_id) == (None, None)
    with pytest.raises(TypeError):
        store.Decided(state="quiet")  # type: ignore[call-arg]


def test_the_message_rows_are_columns_of_the_messages_table() -> None:
    assert names(store.MessageRow) <= set(messages.c.keys())
    assert names(store.RuleMessage) <= names(store.MessageRow)
    assert names(store.Correspondence) <= set(messages.c.keys())


def test_the_decided_columns_are_thread_columns() -> None:
    assert names(store.Decided) <= names(store.RuleThread)
    assert names(store.ThreadPatch) <= names(store.ThreadRow)


def test_a_patch_writes_only_the_fields_it_names() -> None:
    patch = store.ThreadPatch(closed_reason=None, snoozed_until=None, reopened_at=NOW)
    assert patch.values() == {"snoozed_until": None, "closed_reason": None, "reopened_at": NOW}
    assert store.ThreadPatch().values() == {}
    thread = a_thread(closed_reason="by you", snoozed_until=NOW, answered_note="they called")
    patched = patch.applied_to(thread)
    assert (patched.closed_reason, patched.snoozed_until, patched.reopened_at) == (None, None, NOW)
    assert patched.answered_note == "they called"  # not named: kept
    assert patched.id == thread.id and patched.updated_at == thread.updated_at


def test_a_decided_view_is_the_view_of_the_thread_as_written() -> None:
    thread = a_thread()
    decided = store.Decided(
        state="replied",
        reason="replied: they wrote",
        needs_response=True,
        next_check_at=None,
        followups_sent=2,
        last_outbound_at=NOW - timedelta(days=2),
        last_inbound_at=NOW,
        subject="Re: Offer",
    )
    written = replace(thread, **{n: getattr(decided, n) for n in names(store.Decided)})
    assert decided_view(thread, decided, ["<a@x>"], at=NOW) == thread_view(
        written, ["<a@x>"], updated_at=NOW
    )
    # An event's `thread` is the thread's JSON as the API shows it once written.
    assert (
        decided_view(thread, decided, ["<a@x>"], at=NOW).as_json()
        == thread_view(written, ["<a@x>"], updated_at=NOW).as_json()
    )


def test_thread_message_maps_body_facts() -> None:
    row = store.RuleMessage(
        thread_id=7,
        message_key="<a@x>",
        has_message_id=True,
        kind="auto_reply",
        date=NOW,
        from_addr="b@buyer.example",
        from_name="B",
        to_addrs=["rep@seller.example"],
        cc_addrs=["c@buyer.example"],
        details={"subkind": "out_of_office", "return_date": "2026-12-01", "decline": False},
        subject="Re: Offer",
    )
    message = thread_message(row)
    assert message.kind is MessageKind.AUTO_REPLY
    assert message.subkind is Subkind.OUT_OF_OFFICE
    assert message.return_date == date(2026, 12, 1)
    assert message.recipients == ("rep@seller.example", "c@buyer.example")
    plain = thread_message(
        store.RuleMessage(
            **{**{f.name: getattr(row, f.name) for f in fields(row)}, "details": None}
        )
    )
    assert plain.subkind is None and plain.return_date is None


def test_a_thread_view_has_the_api_fields_in_the_api_order() -> None:
    view = thread_view(a_thread(), ["<a@x>"], updated_at=NOW)
    assert list(view.as_json()) == list(ThreadOut.model_fields)
    assert view.as_json() == asdict(view)
    assert ThreadOut.model_validate(view, from_attributes=True).model_dump() == view.as_json()
    assert view.as_json()["updated_at"] == NOW.isoformat()
    assert view.last_inbound_at is None


def test_a_message_view_is_shown_with_from_as_the_api_spells_it() -> None:
    assert names(MessageView) == set(MessageOut.model_fields)
    view = MessageView(
        message_id=None,
        kind="outbound",
        kind_reason="",
        thread_reason=None,
        from_="rep@seller.example",
        from_name="Rep",
        to=["b@buyer.example"],
        cc=[],
        date=NOW.isoformat(),
        subject="Offer",
        folder="Sent",
        folders=["Sent"],
    )
    shown = MessageOut.model_validate(view, from_attributes=True).model_dump(by_alias=True)
    assert shown["from"] == "rep@seller.example"


def test_an_undecided_thread_has_no_view() -> None:
    with pytest.raises(ValueError, match="not been decided"):
        thread_view(a_thread(state=None), [], updated_at=NOW)
