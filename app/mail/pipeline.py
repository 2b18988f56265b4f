"""Raw header bytes -> a message ready to store. Shared by IMAP sync and file import."""

from __future__ import annotations

from datetime import datetime

from app.domain.classify import classify
from app.domain.headers import parse_header_bytes
from app.domain.model import Identity
from app.domain.threads import synthetic_message_key, thread_links
from app.storage.messages import NewMessage


def prepare_message(
    raw_header: bytes,
    *,
    identity: Identity,
    fallback_date: datetime,
    folder_id: int | None = None,
    uid: int | None = None,
    uidvalidity: int | None = None,
    gm_msgid: int | None = None,
    gm_thrid: int | None = None,
) -> NewMessage:
    """Parse, link and classify one message. Never raises on junk: defects are recorded."""
    facts = parse_header_bytes(raw_header)
    if facts.message_id is None and facts.from_ is None and facts.date is None:
        # No Message-ID, no sender, no date: nothing to thread or decide on. Recorded, skipped.
        detail = "; ".join(facts.defects[:3]) or "empty header"
        raise ValueError(f"not an e-mail: no Message-ID, From or Date ({detail})")
    links = thread_links(facts, fallback_key=synthetic_message_key(raw_header))
    return NewMessage(
        facts=facts,
        links=links,
        classification=classify(facts, identity),
        date=facts.date or fallback_date,
        folder_id=folder_id,
        uid=uid,
        uidvalidity=uidvalidity,
        gm_msgid=gm_msgid,
        gm_thrid=gm_thrid,
    )
