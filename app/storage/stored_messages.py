"""A stored message row read back as the domain's values: for the rules (`thread_message`)
and for reading a message again with its body or threading it again (`StoredHeader`,
`facts_of_row`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

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
    """A stored message as the rules see it."""
    return message_of_columns(
        row.message_key,
        row.kind,
        row.date,
        row.from_addr,
        row.from_name,
        row.to_addrs,
        row.cc_addrs,
        row.details,
    )


def message_of_columns(
    key: str,
    kind_name: str,
    sent: datetime,
    sender: str,
    name: str,
    to: list[str],
    cc: list[str],
    details: dict[str, Any] | None,
) -> ThreadMessage:
    """`thread_message` from the decoded columns themselves: the rules' batch query builds
    the domain value straight from its result rows, with no typed row in between (the
    scheduler and a baseline's end call this for every message they decide on; the common
    case, no body facts, takes the short way)."""
    kind = _KINDS.get(kind_name) or MessageKind(kind_name)  # ValueError when unknown
    if not details:
        return ThreadMessage(
            message_id=key,
            kind=kind,
            date=sent,
            sender=sender,
            sender_name=name,
            recipients=(*to, *cc),
        )
    subkind = details.get("subkind")
    back = details.get("return_date")
    return ThreadMessage(
        message_id=key,
        kind=kind,
        date=sent,
        sender=sender,
        sender_name=name,
        recipients=(*to, *cc),
        subkind=Subkind(subkind) if subkind else None,
        return_date=date.fromisoformat(back) if back else None,
        decline=bool(details.get("decline")),
        replacement_contact=details.get("replacement_contact"),
    )
