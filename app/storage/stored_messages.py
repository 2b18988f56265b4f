"""A stored message row read back as the domain's values: for the rules (`thread_message`)
and for reading a message again with its body or threading it again (`StoredHeader`,
`facts_of_row`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from app.domain.model import Address, HeaderFacts, MessageKind, Subkind, ThreadMessage

if TYPE_CHECKING:  # storage.threads reads its rows with this mapper: no import back at run time
    from app.storage.threads import RuleMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredHeader:
    """A stored message's header facts with its ids: what classifying it again (with its
    body) or threading it again (by its subject) needs."""

    id: int
    thread_id: int | None
    message_key: str
    has_message_id: bool
    in_reply_to: list[str]
    references: list[str]
    subject: str
    from_addr: str
    from_name: str
    to_addrs: list[str]
    cc_addrs: list[str]
    date: datetime
    signals: dict[str, str]
    defects: list[str]
    orphan_subject: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageToRead(StoredHeader):
    """A stored message whose body is still to be read, with where to fetch it."""

    folder_name: str
    uid: int


def facts_of_row(row: StoredHeader) -> HeaderFacts:
    """A stored message's header facts, for reading it again with its body."""
    return HeaderFacts(
        message_id=row.message_key if row.has_message_id else None,
        in_reply_to=tuple(row.in_reply_to),
        references=tuple(row.references),
        subject=row.subject,
        from_=Address(email=row.from_addr, name=row.from_name) if row.from_addr else None,
        to=tuple(Address(email=a) for a in row.to_addrs),
        cc=tuple(Address(email=a) for a in row.cc_addrs),
        date=row.date,
        signals=dict(row.signals),
        defects=tuple(row.defects),
    )


_KINDS = {kind.value: kind for kind in MessageKind}


def thread_message(row: RuleMessage) -> ThreadMessage:
    """A stored message as the rules see it (the scheduler calls this for every message of
    every due thread: the common case, no body facts, takes the short way)."""
    kind = _KINDS.get(row.kind) or MessageKind(row.kind)  # ValueError when unknown
    details = row.details
    if not details:
        return ThreadMessage(
            message_id=row.message_key,
            kind=kind,
            date=row.date,
            sender=row.from_addr,
            sender_name=row.from_name,
            recipients=(*row.to_addrs, *row.cc_addrs),
        )
    subkind = details.get("subkind")
    back = details.get("return_date")
    return ThreadMessage(
        message_id=row.message_key,
        kind=kind,
        date=row.date,
        sender=row.from_addr,
        sender_name=row.from_name,
        recipients=(*row.to_addrs, *row.cc_addrs),
        subkind=Subkind(subkind) if subkind else None,
        return_date=date.fromisoformat(back) if back else None,
        decline=bool(details.get("decline")),
        replacement_contact=details.get("replacement_contact"),
    )
