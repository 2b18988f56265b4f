"""Threads as the API and the events show them: lists, detail with the timeline."""

from __future__ import annotations

from typing import Any

from app.domain.model import ThreadState
from app.errors import InvalidInput, NotFound
from app.services.context import Context
from app.services.paging import decode_cursor, encode_cursor, split_page
from app.services.views import iso
from app.storage import threads as store
from app.storage.engine import reading

MAX_PAGE = 200


def thread_view(row: dict[str, Any], message_ids: list[str]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "mailbox_id": row["mailbox_id"],
        "subject": row["subject"],
        "state": row["state"],
        "reason": row["reason"],
        "needs_response": row["needs_response"],
        "message_ids": message_ids,
        "last_outbound_at": iso(row["last_outbound_at"]),
        "last_inbound_at": iso(row["last_inbound_at"]),
        "next_check_at": iso(row["next_check_at"]),
        "followups_sent": row["followups_sent"],
        "snoozed_until": iso(row["snoozed_until"]),
        "updated_at": iso(row["updated_at"]),
    }


async def list_threads(
    ctx: Context,
    *,
    user_id: int,
    mailbox_id: int | None = None,
    state: ThreadState | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
    before = decode_cursor("t", cursor) if cursor else None
    async with reading(ctx.engine) as conn:
        rows = await store.list_threads(
            conn,
            user_id=user_id,
            mailbox_id=mailbox_id,
            state=state.value if state else None,
            before_id=before,
            limit=limit + 1,
        )
        page, more = split_page(rows, limit)
        ids = await store.message_ids_by_thread(conn, [r["id"] for r in page])
    items = [thread_view(r, ids.get(r["id"], [])) for r in page]
    next_cursor = encode_cursor("t", page[-1]["id"]) if more else None
    return items, next_cursor


async def get_thread(ctx: Context, *, user_id: int, thread_id: int) -> dict[str, Any]:
    async with reading(ctx.engine) as conn:
        row = await store.get_thread(conn, thread_id, user_id=user_id)
        if row is None or row["state"] is None:
            raise NotFound(f"no thread {thread_id}")
        messages = (await store.messages_of_threads(conn, [thread_id]))[thread_id]
        where = await store.folders_of_messages(conn, [m["id"] for m in messages])
    view = thread_view(row, [m["message_key"] for m in messages if m["has_message_id"]])
    view["messages"] = [
        {
            "message_id": m["message_key"] if m["has_message_id"] else None,
            "kind": m["kind"],
            "kind_reason": m["kind_reason"],
            "thread_reason": m["thread_reason"],
            "from": m["from_addr"],
            "from_name": m["from_name"],
            "to": m["to_addrs"],
            "cc": m["cc_addrs"],
            "date": iso(m["date"]),
            "subject": m["subject"],
            "folder": next(iter(where.get(m["id"], [])), None),
            "folders": where.get(m["id"], []),
        }
        for m in messages
    ]
    return view
