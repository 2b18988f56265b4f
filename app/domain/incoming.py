"""A message as the mail edge read it (from a server or a file), ready to store: what the
IMAP sync and the file import produce and storage accepts, so it lives below both."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.domain.model import Classification, HeaderFacts, cheap_init
from app.domain.threads import ThreadLinks


@cheap_init  # built for every message of a sync
@dataclass(frozen=True, kw_only=True)
class NewMessage:
    facts: HeaderFacts
    links: ThreadLinks
    classification: Classification
    date: datetime  # the Date header, else the server's INTERNALDATE
    folder_id: int | None = None
    uid: int | None = None
    uidvalidity: int | None = None
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    details: dict[str, Any] | None = None  # what reading the body found; None: not read
    text_prefix: str | None = None  # kept only when the operator asks (debugging)
