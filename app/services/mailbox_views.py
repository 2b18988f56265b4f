"""A stored mailbox as the faces show it: the pages' `Mailbox` and the API's (and the
webhook payloads') `MailboxView`. Neither ever holds a secret."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from app.services.views import iso
from app.storage.mailboxes import AuthMethod, MailboxRow, Security, SyncProgress


@dataclass(frozen=True, slots=True, kw_only=True)
class Mailbox:
    """A mailbox as the pages render it (and services pass on to them)."""

    id: int
    user_id: int
    name: str
    imap_host: str
    imap_port: int
    imap_security: Security
    imap_username: str
    auth_method: AuthMethod
    oauth2_provider: str | None
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    folder_include: list[str]
    folder_exclude: list[str]
    status: str
    status_message: str
    progress: SyncProgress | None
    drafts_preparing: int
    last_sync_at: datetime | None
    created_at: datetime


def mailbox_of(row: MailboxRow) -> Mailbox:
    return Mailbox(
        id=row["id"],
        user_id=row["user_id"],
        name=row["name"],
        imap_host=row["imap_host"],
        imap_port=row["imap_port"],
        imap_security=row["imap_security"],
        imap_username=row["imap_username"],
        auth_method=row["auth_method"],
        oauth2_provider=row["oauth2_provider"],
        addresses=row["addresses"],
        timezone=row["timezone"],
        holiday_country=row["holiday_country"],
        holiday_subdiv=row["holiday_subdiv"],
        folder_include=row["folder_include"] or [],
        folder_exclude=row["folder_exclude"] or [],
        status=row["status"],
        status_message=row["status_message"],
        progress=row["progress"],
        drafts_preparing=row["drafts_preparing"] or 0,
        last_sync_at=row["last_sync_at"],
        created_at=row["created_at"],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapView:
    host: str
    port: int
    security: Security
    username: str
    auth_method: AuthMethod
    oauth2_provider: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FolderChoiceView:
    include: list[str]
    exclude: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class MailboxView:
    """A mailbox as the API shows it and the mailbox.failed event carries it."""

    id: int
    name: str
    imap: ImapView
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    folders: FolderChoiceView
    status: str
    status_message: str
    progress: SyncProgress | None
    drafts_preparing: int
    last_sync_at: str | None
    created_at: str

    def payload(self) -> dict[str, Any]:
        """As JSON for a webhook payload (an open JSON object: the event's body)."""
        return asdict(self)


def public_view(mailbox: Mailbox) -> MailboxView:
    """A mailbox as the API shows it: never the secret."""
    created = iso(mailbox.created_at)
    assert created is not None
    return MailboxView(
        id=mailbox.id,
        name=mailbox.name,
        imap=ImapView(
            host=mailbox.imap_host,
            port=mailbox.imap_port,
            security=mailbox.imap_security,
            username=mailbox.imap_username,
            auth_method=mailbox.auth_method,
            oauth2_provider=mailbox.oauth2_provider,
        ),
        addresses=mailbox.addresses,
        timezone=mailbox.timezone,
        holiday_country=mailbox.holiday_country,
        holiday_subdiv=mailbox.holiday_subdiv,
        folders=FolderChoiceView(include=mailbox.folder_include, exclude=mailbox.folder_exclude),
        status=mailbox.status,
        status_message=mailbox.status_message,
        progress=mailbox.progress,
        drafts_preparing=mailbox.drafts_preparing,
        last_sync_at=iso(mailbox.last_sync_at),
        created_at=created,
    )
