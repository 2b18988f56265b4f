"""A new message as the `messages` table takes it: its row's values encoded once (JSON lists,
the date as the driver binds it), with what threading and storing it need besides.

Built where the message was parsed: in a first sync's reader process, so that the process
storing it only adds ids (no SQLAlchemy here, see `storage.values`). A flat tuple of strings
also crosses the pipe several times cheaper than the parsed message's objects."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from app.domain.incoming import NewMessage
from app.domain.model import MessageKind
from app.domain.threads import ThreadLinks, orphan_subject_key, subject_key
from app.storage.values import driver_flag, driver_time, json_string_map, json_strings, json_value

GMAIL_THREAD_DOMAIN = "gmail-thread.radiosilence.invalid"

# The `messages` columns a row carries, in this order: ids first (given when it is stored),
# then `MessageRow.values`, then created_at.
MESSAGE_COLUMNS = (
    "id",
    "mailbox_id",
    "thread_id",
    "message_key",
    "has_message_id",
    "in_reply_to",
    "references",
    "subject",
    "from_addr",
    "from_name",
    "to_addrs",
    "cc_addrs",
    "date",
    "kind",
    "kind_reason",
    "signals",
    "defects",
    "created_at",
)  # thread_reason: NULL (only the subject fallback sets one)
# Mostly NULL: a row leaves out those it has not, since sqlite3 binds a None slowly (it
# looks for an adapter first). Rows are grouped by which of them they carry.
OPTIONAL_COLUMNS = ("details", "text_prefix", "gm_msgid", "gm_thrid", "orphan_subject")


class MessageRow(NamedTuple):
    links: ThreadLinks  # Gmail's own thread id among the references, when it gave one
    date: datetime
    subject: str
    subject_key: str
    location: tuple[int, int, int] | None  # folder id, UID, UIDVALIDITY
    values: tuple[Any, ...]  # MESSAGE_COLUMNS[3:-1]
    optional: tuple[Any, ...]  # OPTIONAL_COLUMNS' values, None where it has none


def message_row(m: NewMessage, dialect: str) -> MessageRow:
    """`m` encoded for the database of `dialect` (SQLAlchemy's name: sqlite, postgresql)."""
    f, sender, kind = m.facts, m.facts.from_, m.classification.kind
    links = m.links
    if m.gm_thrid is not None:  # Gmail already knows the conversation: trust it
        gmail = f"<gm-thread-{m.gm_thrid}@{GMAIL_THREAD_DOMAIN}>"
        links = ThreadLinks(key=links.key, references=(*links.references, gmail))
    location = None
    if m.folder_id is not None and m.uid is not None and m.uidvalidity is not None:
        location = (m.folder_id, m.uid, m.uidvalidity)
    return MessageRow(
        links=links,
        date=m.date,
        subject=f.subject,
        subject_key=subject_key(f.subject),
        location=location,
        values=(
            m.links.key,
            driver_flag(dialect)(f.message_id is not None),
            json_strings(f.in_reply_to),
            json_strings(f.references),
            f.subject,
            sender.normalized if sender else "",
            sender.name if sender else "",
            json_strings([a.normalized for a in f.to]),
            json_strings([a.normalized for a in f.cc]),
            driver_time(dialect)(m.date),
            kind.value,
            m.classification.reason,
            json_string_map(f.signals),
            json_strings(f.defects),
        ),
        optional=(
            json_value(m.details),
            m.text_prefix,
            m.gm_msgid,
            m.gm_thrid,
            orphan_subject_key(f) if kind is not MessageKind.BULK else None,
        ),
    )
