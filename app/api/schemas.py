"""Request and response bodies of the public API (the contract in PRODUCT.md)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Security = Literal["tls", "starttls", "plain"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ImapIn(Strict):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    security: Security = "tls"
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr | None = Field(None, min_length=1, max_length=4096)
    oauth2_token: SecretStr | None = Field(None, min_length=1, max_length=16384)

    @model_validator(mode="after")
    def _one_secret(self) -> ImapIn:
        if (self.password is None) == (self.oauth2_token is None):
            raise ValueError("give exactly one of 'password' or 'oauth2_token'")
        return self


class ImapPatch(Strict):
    host: str | None = Field(None, min_length=1, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    security: Security | None = None
    username: str | None = Field(None, min_length=1, max_length=320)
    password: SecretStr | None = Field(None, min_length=1, max_length=4096)
    oauth2_token: SecretStr | None = Field(None, min_length=1, max_length=16384)

    @model_validator(mode="after")
    def _at_most_one_secret(self) -> ImapPatch:
        if self.password is not None and self.oauth2_token is not None:
            raise ValueError("give at most one of 'password' or 'oauth2_token'")
        return self


class FolderChoice(Strict):
    include: list[str] = Field(
        default_factory=list, max_length=200, description="Folders to read besides the defaults"
    )
    exclude: list[str] = Field(
        default_factory=list, max_length=200, description="Folders never to read"
    )


class MailboxCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    imap: ImapIn
    addresses: list[str] = Field(min_length=1, max_length=50)
    timezone: str = Field("UTC", min_length=1, max_length=64)
    holiday_country: str | None = Field(None, max_length=8)
    holiday_subdiv: str | None = Field(None, max_length=16)
    folders: FolderChoice | None = None


class MailboxPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    imap: ImapPatch | None = None
    addresses: list[str] | None = Field(None, min_length=1, max_length=50)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    holiday_country: str | None = Field(None, max_length=8)
    holiday_subdiv: str | None = Field(None, max_length=16)
    folders: FolderChoice | None = None


class Created(BaseModel):
    id: int


class ImapOut(BaseModel):
    host: str
    port: int
    security: Security
    username: str
    auth_method: Literal["password", "oauth2"]


class MailboxOut(BaseModel):
    id: int
    name: str
    imap: ImapOut
    addresses: list[str]
    timezone: str
    holiday_country: str | None
    holiday_subdiv: str | None
    folders: FolderChoice
    status: str
    status_message: str
    progress: dict[str, Any] | None
    last_sync_at: str | None
    created_at: str


class MailboxList(BaseModel):
    items: list[MailboxOut]


class ConnectionTest(BaseModel):
    ok: bool
    folders: list[str]


class SyncResult(BaseModel):
    mailbox_id: int
    status: Literal["done", "started"]
    folders: int | None = None
    new_messages: int | None = None
    skipped: int | None = None
    threads_evaluated: int | None = None


class ThreadOut(BaseModel):
    id: int
    mailbox_id: int
    subject: str
    state: str
    reason: str
    needs_response: bool
    message_ids: list[str]
    last_outbound_at: str | None
    last_inbound_at: str | None
    next_check_at: str | None
    followups_sent: int
    snoozed_until: str | None
    updated_at: str | None


class MessageOut(BaseModel):
    message_id: str | None
    kind: str
    kind_reason: str
    from_: str = Field(alias="from")
    from_name: str
    to: list[str]
    cc: list[str]
    date: str | None
    subject: str
    folder: str | None
    folders: list[str]

    model_config = ConfigDict(populate_by_name=True)


class ThreadDetail(ThreadOut):
    messages: list[MessageOut]


class ThreadPage(BaseModel):
    items: list[ThreadOut]
    next_cursor: str | None


class EventOut(BaseModel):
    id: int
    type: str
    timestamp: str
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class Problem(BaseModel):
    detail: str
    code: str
