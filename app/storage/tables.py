"""The whole schema in one place. Alembic migrations are checked against this metadata."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on both backends."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the storage layer takes aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> Column[int]:
    return Column("id", BigId, primary_key=True, autoincrement=True)


def _fk(name: str, target: str, *, nullable: bool = False) -> Column[int]:
    return Column(name, BigId, ForeignKey(target, ondelete="CASCADE"), nullable=nullable)


def _created() -> Column[datetime]:
    return Column("created_at", UTCDateTime(), nullable=False)


users = Table(
    "users",
    metadata,
    _id(),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("password_hash", String(255), nullable=False),  # argon2id
    Column("is_admin", Boolean, nullable=False, default=False),
    _created(),
    # Set: the user can neither sign in nor use a token or a session, effective at once.
    Column("disabled_at", UTCDateTime()),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("prefix", String(16), nullable=False),  # first characters, to tell tokens apart
    _created(),
    Column("last_used_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),  # NULL: until revoked
)

# Signed-in browsers: the cookie carries a random token, only its hash is stored, so signing
# out, disabling the user or a lost laptop end a session at once, on every process.
web_sessions = Table(
    "web_sessions",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    Column("token_hash", String(64), nullable=False, unique=True),
    _created(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Index(None, "user_id"),
)

# Failed sign-ins of the last minutes, by account and by client address: the rate limit
# holds across processes because it is counted here, not in one process's memory.
login_failures = Table(
    "login_failures",
    metadata,
    _id(),
    Column("key", String(400), nullable=False),  # "email:…" or "ip:…"
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "key", "at"),
)

mailboxes = Table(
    "mailboxes",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    Column("name", String(200), nullable=False),
    Column("imap_host", String(255), nullable=False),
    Column("imap_port", Integer, nullable=False),
    Column("imap_security", String(10), nullable=False),  # tls | starttls | plain
    Column("imap_username", String(320), nullable=False),
    Column("auth_method", String(10), nullable=False),  # password | oauth2
    Column("secret_enc", LargeBinary, nullable=False),  # password or token, encrypted
    Column("addresses", JSON, nullable=False),  # the rep's own addresses
    Column("timezone", String(64), nullable=False),
    Column("holiday_country", String(8)),
    Column("holiday_subdiv", String(16)),
    Column("rules", JSON, nullable=False),  # overrides of domain.model.Rules
    Column("status", String(16), nullable=False),  # new | syncing | ok | failed
    Column("status_message", Text, nullable=False, default=""),
    Column("last_sync_at", UTCDateTime()),
    Column("next_sync_at", UTCDateTime()),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime()),
    # The IDLE watcher's own lease: one IDLE connection per mailbox across all workers.
    Column("watch_owner", String(64)),
    Column("watch_expires_at", UTCDateTime()),
    # JSON columns that may be absent are SQL NULL, not JSON 'null', so IS NULL finds them.
    Column("progress", JSON(none_as_null=True)),  # the running sync: folder, done, total
    Column("folder_include", JSON(none_as_null=True)),  # read besides the defaults
    Column("folder_exclude", JSON(none_as_null=True)),  # never read
    # Signed in with a provider (google | microsoft | oidc): secret_enc holds its access
    # token, refresh_token_enc (encrypted too) renews it before token_expires_at.
    Column("oauth2_provider", String(32)),
    Column("refresh_token_enc", LargeBinary),
    Column("token_expires_at", UTCDateTime()),
    # A first sync not finished yet: the scheduler leaves its threads alone; the sync decides
    # them all in one transaction at its end (services.sync).
    Column("baseline", Boolean, nullable=False, default=False, server_default=false()),
    # Quiet threads still waiting for their draft, as the last composition pass counted them.
    Column("drafts_preparing", Integer, nullable=False, default=0, server_default="0"),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("user_id", "name"),
    Index(None, "next_sync_at"),
)

# A sign-in under way: the provider sends the browser back with `state`, whose hash finds the
# row, once (the row is deleted as it is used). The PKCE verifier waits here, encrypted,
# bound to the user and to the browser session that started it (None: started by the API).
oauth2_starts = Table(
    "oauth2_starts",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    Column("state_hash", String(64), nullable=False, unique=True),
    Column("session_hash", String(64)),
    Column("provider", String(32), nullable=False),
    Column("verifier_enc", LargeBinary, nullable=False),
    _fk("mailbox_id", "mailboxes.id", nullable=True),  # set: reconnect this mailbox
    Column("expires_at", UTCDateTime(), nullable=False),
    _created(),
    Index(None, "expires_at"),
)

# Worker processes alive now (each renews its row every few seconds): the IDLE watches are
# shared out among them, so that no worker holds them all while another sits idle.
workers = Table(
    "workers",
    metadata,
    Column("owner", String(64), primary_key=True),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("seen_at", UTCDateTime(), nullable=False),
)

folders = Table(
    "folders",
    metadata,
    _id(),
    _fk("mailbox_id", "mailboxes.id"),
    Column("name", String(512), nullable=False),
    Column("special_use", String(16)),  # \Sent, \Drafts, … when the server says so
    Column("uidvalidity", BigInteger),
    Column("highest_uid", BigInteger, nullable=False, default=0),
    Column("highest_modseq", BigInteger),
    Column("last_synced_at", UTCDateTime()),
    # A first sync reads newest first: it aims at backfill_top_uid and has done every UID from
    # backfill_low_uid up. highest_uid is set to the top when the backfill completes.
    Column("backfill_top_uid", BigInteger),
    Column("backfill_low_uid", BigInteger),
    UniqueConstraint("mailbox_id", "name"),
)

threads = Table(
    "threads",
    metadata,
    _id(),
    _fk("mailbox_id", "mailboxes.id"),
    Column("user_id", BigId, nullable=False),  # denormalized: every list query is per user
    Column("subject", Text, nullable=False, default=""),
    Column("subject_key", String(255)),  # folded base subject, for the subject fallback
    Column("state", String(20)),  # NULL until the rules have looked at it once
    Column("reason", Text, nullable=False, default=""),
    Column("needs_response", Boolean, nullable=False, default=False),
    Column("last_outbound_at", UTCDateTime()),
    Column("last_inbound_at", UTCDateTime()),
    Column("next_check_at", UTCDateTime()),
    Column("followups_sent", Integer, nullable=False, default=0),
    Column("snoozed_until", UTCDateTime()),
    Column("closed_reason", Text),
    Column("dirty", Boolean, nullable=False, default=True),  # new mail: evaluate again
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    # What the rep told us by hand: "they called / we met", and "watch it again from here".
    Column("answered_at", UTCDateTime()),
    Column("answered_note", Text),
    Column("reopened_at", UTCDateTime()),
    Index(None, "user_id", "state", "id"),
    Index(None, "mailbox_id", "state", "id"),
    Index(None, "next_check_at"),
    Index(None, "mailbox_id", "subject_key"),
    Index(None, "mailbox_id", "next_check_at"),
)
# The scheduler's second lookup: only the threads with new mail, so finding them costs what
# is dirty, not what is stored (the condition must read exactly as the query's, for SQLite).
Index(
    "ix_threads_dirty",
    threads.c.mailbox_id,
    threads.c.id,
    sqlite_where=threads.c.dirty == true(),
    postgresql_where=threads.c.dirty == true(),
)

# The dashboard's "waiting for your answer": few threads among many, found without a scan.
Index(
    "ix_threads_needs_response",
    threads.c.user_id,
    threads.c.id,
    sqlite_where=threads.c.needs_response == true(),
    postgresql_where=threads.c.needs_response == true(),
)

messages = Table(
    "messages",
    metadata,
    _id(),
    _fk("mailbox_id", "mailboxes.id"),
    Column("thread_id", BigId, ForeignKey("threads.id", ondelete="SET NULL")),
    Column("message_key", String(998), nullable=False),  # Message-ID, or a synthetic one
    Column("has_message_id", Boolean, nullable=False),
    Column("in_reply_to", JSON, nullable=False),
    Column("references", JSON, nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("from_addr", String(320), nullable=False, default=""),
    Column("from_name", Text, nullable=False, default=""),
    Column("to_addrs", JSON, nullable=False),
    Column("cc_addrs", JSON, nullable=False),
    Column("date", UTCDateTime(), nullable=False),  # Date header, else INTERNALDATE
    Column("kind", String(16), nullable=False),
    Column("kind_reason", Text, nullable=False, default=""),
    Column("signals", JSON, nullable=False),  # classification headers, for re-classifying
    Column("defects", JSON, nullable=False),  # what was wrong with the message, if anything
    # What reading the body found (return date, failed recipient …); NULL: not read yet.
    Column("details", JSON(none_as_null=True)),
    Column("text_prefix", Text),  # kept only when the operator asks (debugging)
    Column("gm_msgid", BigInteger),  # Gmail's message and thread ids, where offered
    Column("gm_thrid", BigInteger),
    # An answer that lost its threading headers: its folded subject while it still looks for
    # its thread (see domain.threads.orphan_subject_key); NULL otherwise.
    Column("orphan_subject", String(255)),
    Column("thread_reason", Text),  # why it joined its thread, when not by its headers
    _created(),
    UniqueConstraint("mailbox_id", "message_key"),
    Index(None, "thread_id", "date"),
)
# Orphans are rare: a partial index costs the other messages' inserts nothing.
Index(
    "ix_messages_orphans",
    messages.c.mailbox_id,
    sqlite_where=messages.c.orphan_subject.is_not(None),
    postgresql_where=messages.c.orphan_subject.is_not(None),
)

# Bodies not read yet that a decision may need (see messages.messages_needing_body): the
# after-pass finds them here, so a poll with nothing to read costs nothing per stored message.
_unread = messages.c.details.is_(None) & messages.c.kind.in_(("reply", "auto_reply", "bounce"))
Index("ix_messages_unread", messages.c.mailbox_id, sqlite_where=_unread, postgresql_where=_unread)

# The rep's own e-mails of a mailbox imported from a file, as they were in the file: there is
# no server to fetch them from when a follow-up forwards one (IMAP mailboxes never keep mail).
message_originals = Table(
    "message_originals",
    metadata,
    Column("message_id", BigId, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("raw", LargeBinary, nullable=False),  # RFC 5322 bytes, size-capped at import
    _created(),
)

# Where a message lives: one message may sit in several folders (or twice in one).
message_locations = Table(
    "message_locations",
    metadata,
    _fk("folder_id", "folders.id"),
    Column("uid", BigInteger, nullable=False),
    _fk("message_id", "messages.id"),
    Column("uidvalidity", BigInteger, nullable=False),
    UniqueConstraint("folder_id", "uid", "uidvalidity"),
    Index(None, "message_id"),
)

# Message-IDs referenced before (or without) their own message being stored -> their thread;
# a stored message's own key maps through messages.thread_id. Together they are how a reply
# finds its thread whatever order the mail arrives in, and how two threads merge.
thread_keys = Table(
    "thread_keys",
    metadata,
    _fk("mailbox_id", "mailboxes.id"),
    Column("message_key", String(998), nullable=False),
    _fk("thread_id", "threads.id"),
    UniqueConstraint("mailbox_id", "message_key"),
    Index(None, "thread_id"),
)

# The event log and the transactional outbox: written in the transaction of the state change.
events = Table(
    "events",
    metadata,
    _id(),
    Column("user_id", BigId, nullable=False),
    Column("mailbox_id", BigId),
    Column("thread_id", BigId),
    Column("type", String(40), nullable=False),
    Column("payload", JSON, nullable=False),
    _created(),
    Index(None, "user_id", "id"),
)

# The next id to hand out per table, on SQLite only (PostgreSQL has sequences): ids of rows
# allocated in bulk are never reused, even after the newest row was deleted (a merged thread
# whose id a webhook consumer already holds must not come back as another thread).
id_sequences = Table(
    "id_sequences",
    metadata,
    Column("table_name", String(64), primary_key=True),
    Column("next_id", BigInteger, nullable=False),
)

# Messages that could not be read: recorded, skipped, never fatal.
sync_errors = Table(
    "sync_errors",
    metadata,
    _id(),
    _fk("folder_id", "folders.id"),
    Column("uid", BigInteger, nullable=False),
    Column("error", Text, nullable=False),
    _created(),
    UniqueConstraint("folder_id", "uid"),
)

# Webhook subscriptions: a user's endpoint, its signing secret (encrypted) and its health.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    _id(),
    _fk("user_id", "users.id"),
    Column("url", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("event_types", JSON),  # NULL: every type
    Column("secret_enc", LargeBinary, nullable=False),  # whsec_…, encrypted
    # The secret before the last rotation, still signed with until it expires.
    Column("previous_secret_enc", LargeBinary),
    Column("previous_secret_expires_at", UTCDateTime()),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("disabled_reason", Text, nullable=False, default=""),
    Column("failing_since", UTCDateTime()),  # first failure since the last success
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "user_id", "enabled"),
)

# One message to one subscription: fanned out from `events` in the event's own transaction.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _fk("subscription_id", "webhook_subscriptions.id"),
    Column("event_id", BigId, ForeignKey("events.id", ondelete="CASCADE")),  # NULL: a test ping
    Column("message_id", String(64), nullable=False),  # `webhook-id`, the same on every retry
    Column("event_type", String(40), nullable=False),
    Column("payload", JSON),  # a test ping's data; an event's data is read from `events`
    Column("status", String(12), nullable=False),  # pending | succeeded | dead
    Column("attempts", Integer, nullable=False, default=0),  # in the current retry schedule
    Column("next_attempt_at", UTCDateTime()),
    Column("last_attempt_at", UTCDateTime()),
    Column("last_status_code", Integer),
    Column("last_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime()),
    _created(),
    Column("completed_at", UTCDateTime()),
    UniqueConstraint("subscription_id", "event_id"),
    Index(None, "status", "next_attempt_at"),
    Index(None, "subscription_id", "id"),
)

# Every attempt: when, the answer's status, latency and the start of its body, or the error.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    _id(),
    _fk("delivery_id", "webhook_deliveries.id"),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("status_code", Integer),
    Column("latency_ms", Integer, nullable=False),
    Column("response_start", Text, nullable=False, default=""),
    Column("error", Text),
    Column("verdict", String(12), nullable=False),  # succeeded | failed | throttled | gone
    Index(None, "delivery_id", "id"),
)

# Follow-up drafts, one per thread and step: the composed message, never the original's bytes.
drafts = Table(
    "drafts",
    metadata,
    _id(),
    Column("user_id", BigId, nullable=False),  # denormalized: every query is per user
    _fk("mailbox_id", "mailboxes.id"),
    _fk("thread_id", "threads.id"),
    Column("step", Integer, nullable=False),  # the follow-up step it is for, 1-based
    Column("state", String(12), nullable=False),  # pending | approved | dismissed | snoozed
    Column("question", Text, nullable=False),
    Column("body", Text),  # the whole text as the rep rewrote it; NULL: question + forward
    Column("raw", LargeBinary, nullable=False),  # the composed RFC 5322 message
    Column("revision", Integer, nullable=False, default=1),  # +1 per edit
    Column("message_id", String(998), nullable=False),  # the draft's own Message-ID
    # The rep's e-mail the draft answers (In-Reply-To), or its stand-in key when it had no
    # Message-ID; with step, it tells one quiet spell's draft from the next one's.
    Column("forwarded_message_id", String(998), nullable=False),
    Column("reason", Text),  # which e-mail is forwarded and why; NULL for older drafts
    Column("subject", Text, nullable=False),
    Column("from_addr", String(320), nullable=False),
    Column("to_addrs", JSON, nullable=False),
    Column("cc_addrs", JSON, nullable=False),
    Column("skipped_attachments", JSON, nullable=False),  # over the size cap: left out
    Column("dismiss_reason", Text),  # kept for tuning the rules
    Column("snoozed_until", UTCDateTime()),
    Column("delivery", String(12)),  # imap_draft | smtp, once approved
    Column("approved_revision", Integer),  # the revision that is in Drafts (or was sent)
    Column("imap_folder", String(512)),
    Column("imap_uidvalidity", BigInteger),
    Column("imap_uid", BigInteger),  # from APPENDUID: where the approved draft sits
    Column("approved_at", UTCDateTime()),
    Column("sent_at", UTCDateTime()),
    _created(),
    Column("updated_at", UTCDateTime(), nullable=False),
    # One per step of one quiet spell: a later spell (after an answer) forwards another e-mail.
    UniqueConstraint("thread_id", "step", "forwarded_message_id"),
    Index(None, "user_id", "state", "id"),
    Index(None, "mailbox_id", "state"),
)

# How a mailbox's drafts are made and delivered: question templates, attachments, SMTP.
draft_settings = Table(
    "draft_settings",
    metadata,
    Column("mailbox_id", BigId, ForeignKey("mailboxes.id", ondelete="CASCADE"), primary_key=True),
    Column("templates", JSON(none_as_null=True)),  # stage -> [template]; absent: defaults
    Column("attach_originals", Boolean, nullable=False, default=False),
    Column("attachment_max_bytes", Integer, nullable=False),
    Column("smtp_enabled", Boolean, nullable=False, default=False),
    Column("smtp_host", String(255)),
    Column("smtp_port", Integer),
    Column("smtp_security", String(10)),  # tls | starttls | plain
    Column("smtp_username", String(320)),
    Column("smtp_secret_enc", LargeBinary),  # encrypted like the IMAP secret
    Column("updated_at", UTCDateTime(), nullable=False),
)
