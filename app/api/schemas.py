"""Request and response bodies of the public API (the contract in PRODUCT.md)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from app.services.bodies import Strict as Strict  # api.webhooks and others take it from here

Security = Literal["tls", "starttls", "plain"]


class Patch(Strict):
    """A partial update: a field left out keeps its value. `NOT_NULL` names the fields that
    every row has, so that an explicit null is refused with a 422 instead of reaching them."""

    NOT_NULL: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: Any) -> dict[str, Any]:
        # The published schema says so too: those fields may be left out, never null.
        schema: dict[str, Any] = handler(core_schema)
        schema = handler.resolve_ref_schema(schema)
        for name in cls.NOT_NULL:
            prop = schema.get("properties", {}).get(name)
            if prop is None or "anyOf" not in prop:
                continue
            kept = [alt for alt in prop.pop("anyOf") if alt.get("type") != "null"]
            prop.pop("default", None)
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})
        return schema

    @model_validator(mode="after")
    def _no_nulls(self) -> Patch:
        nulls = [
            n for n in self.NOT_NULL if n in self.model_fields_set and getattr(self, n) is None
        ]
        if nulls:
            raise ValueError(
                f"{', '.join(nulls)} cannot be null: leave {'them' if len(nulls) > 1 else 'it'} "
                "out to keep the current value"
            )
        return self


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


class ImapPatch(Patch):
    NOT_NULL = ("host", "port", "security", "username")

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


class MailboxPatch(Patch):
    NOT_NULL = ("name", "addresses", "timezone")

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
    auth_method: Literal["password", "oauth2", "none"] = Field(
        description="`none`: imported from a file (`radiosilence import`), no IMAP server "
        "behind it (host and username empty, port 0)"
    )
    oauth2_provider: str | None = Field(
        None,
        description="Signed in with this provider (google, microsoft, oidc): the product "
        "refreshes its tokens. None: a password, or a token given in `oauth2_token`.",
    )


class OAuth2StartIn(Strict):
    provider: str = Field(min_length=1, max_length=40, description="google, microsoft or oidc")
    mailbox_id: int | None = Field(
        None, ge=1, le=2**63 - 1, description="Reconnect this mailbox instead of adding one"
    )


class OAuth2Start(BaseModel):
    url: str = Field(description="Open this in the rep's browser, signed in to Radio Silence")
    redirect_uri: str = Field(description="Where the provider sends the browser back")
    expires_in: int = Field(description="Seconds within which the sign-in must be finished")


class OAuth2Provider(BaseModel):
    key: str
    label: str


class OAuth2Providers(BaseModel):
    items: list[OAuth2Provider]


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
    drafts_preparing: int = Field(
        0, description="quiet threads whose follow-up draft is still being composed"
    )
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
    # Why it is in this thread when its own headers did not say (e.g. the subject fallback).
    thread_reason: str | None = None
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


# --- drafts -----------------------------------------------------------------------------


class DraftOut(BaseModel):
    id: int
    thread_id: int
    mailbox_id: int
    step: int
    state: Literal["pending", "approved", "dismissed", "snoozed"]
    question: str
    body: str | None = Field(description="the whole text as you rewrote it, if you did")
    subject: str
    from_: str = Field(alias="from")
    to: list[str]
    cc: list[str]
    message_id: str
    in_reply_to: str | None = Field(
        description="the Message-ID of your last e-mail, which the draft answers; null when "
        "that e-mail had no Message-ID (the draft then carries no In-Reply-To/References)"
    )
    reason: str | None = Field(
        default=None, description="which of your e-mails the draft forwards, and why"
    )
    skipped_attachments: list[str]
    revision: int
    dismiss_reason: str | None
    snoozed_until: str | None
    delivery: Literal["imap_draft", "smtp", "download"] | None = Field(
        description="how the approved draft went out: into your Drafts folder, sent over "
        "SMTP, or (a mailbox imported from a file, which has no server) for you to download "
        "from /raw"
    )
    imap_folder: str | None
    imap_uid: int | None
    approved_at: str | None
    sent_at: str | None
    created_at: str
    updated_at: str

    model_config = ConfigDict(populate_by_name=True)


class DraftDetail(DraftOut):
    text: str = Field(description="the text part: the question, then the forwarded e-mail")


class DraftPage(BaseModel):
    items: list[DraftOut]
    next_cursor: str | None
    preparing: bool = Field(
        False,
        description="with thread_id: the thread is quiet and its follow-up draft is being "
        "prepared; ask again after retry_after seconds",
    )
    retry_after: int | None = None
    blocked: str | None = Field(
        None,
        description="with thread_id: the thread is quiet but its draft cannot be made now, "
        "because its mailbox cannot be read (e.g. sign in again); in plain words",
    )


class DraftPatch(Strict):
    question: str | None = Field(None, min_length=1, max_length=2000)
    body: str | None = Field(
        None, max_length=200_000, description="the whole text; null drops a rewritten body"
    )


class DraftApprove(Strict):
    delivery: Literal["imap_draft", "smtp"] = "imap_draft"


class DraftDismiss(Strict):
    reason: str | None = Field(None, max_length=1000, description="kept for tuning the rules")


class DraftSnooze(Strict):
    until: AwareDatetime | None = Field(None, description="default: in one day")


class DraftTemplatesIn(Strict):
    first: list[str] | None = Field(None, max_length=10, description="null: the defaults")
    middle: list[str] | None = Field(None, max_length=10)
    last: list[str] | None = Field(None, max_length=10)


class DraftStageTemplates(BaseModel):
    templates: list[str]
    custom: bool


class DraftTemplatesOut(BaseModel):
    stages: dict[str, DraftStageTemplates]
    variables: list[str]


class SmtpIn(Strict):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(ge=1, le=65535)
    security: Security = "starttls"
    username: str | None = Field(None, min_length=1, max_length=320)
    password: SecretStr | None = Field(
        None, min_length=1, max_length=4096, description="omit to keep the stored one"
    )


class SmtpOut(BaseModel):
    host: str
    port: int
    security: Security
    username: str | None
    password_set: bool


class DraftSettingsIn(Strict):
    attach_originals: bool = False
    attachment_max_bytes: int = Field(10 * 1024 * 1024, ge=0, le=25 * 1024 * 1024)
    smtp: SmtpIn | None = Field(None, description="null: approve into Drafts only")


class DraftSettingsOut(BaseModel):
    attach_originals: bool
    attachment_max_bytes: int
    smtp: SmtpOut | None


# --- rules (issue 5) -------------------------------------------------------------------------


class RulesPreviewItem(BaseModel):
    thread_id: int
    subject: str
    state: str
    reason: str
    needs_response: bool
    new_state: str
    new_reason: str
    new_needs_response: bool


class RulesPreview(BaseModel):
    threads_evaluated: int
    threads_changing: int
    items: list[RulesPreviewItem] = Field(description="the first changes, by thread id")
    truncated: bool


class SnoozeBody(Strict):
    until: AwareDatetime = Field(description="a future time with its UTC offset")


class CloseBody(Strict):
    reason: str | None = Field(None, max_length=500)


class AnsweredBody(Strict):
    note: str = Field(min_length=1, max_length=1000, description="e.g. 'they called'")


class TokenOut(BaseModel):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    created_at: str
    last_used_at: str | None
    expires_at: str | None


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenCreate(Strict):
    name: str = Field("api", min_length=1, max_length=100)
    expires_at: AwareDatetime | None = Field(None, description="Unset: valid until revoked")


class TokenCreated(BaseModel):
    token: str = Field(description="Shown this once: only its hash is stored")
