"""Settings: read once from RADIOSILENCE_* environment variables and `.env`, validated hard.

Nothing here runs at import time; `load_settings()` builds the object and the application
passes it down. Tests build their own `Settings(...)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/radiosilence.db"
# Values that must never protect real data: the placeholder of .env.example and friends.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "demo"})
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Every setting of the service. `.env.example` lists each one with a comment."""

    model_config = SettingsConfigDict(
        env_prefix="RADIOSILENCE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path or postgresql+asyncpg://…",
    )
    secret_key: SecretStr = Field(
        ...,
        description="At least 32 characters; encrypts mailbox passwords at rest. Keep it safe.",
    )
    host: str = Field("127.0.0.1", description="Address `radiosilence serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `radiosilence serve` listens on.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text",
        description="text: one readable line per event; json: one JSON object per line "
        "(time, level, logger, message, event) for log shippers.",
    )
    imap_allow_plaintext: bool = Field(
        False, description="Allow security=plain to non-loopback IMAP hosts (never in production)."
    )
    imap_ca_file: Path | None = Field(
        None, description="Extra CA bundle (PEM) trusted for IMAP TLS, e.g. a company CA."
    )
    imap_timeout_seconds: float = Field(30.0, gt=0, le=600)
    imap_test_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=600,
        description="How long a connection test (connecting a mailbox, changing its server, "
        "POST …/test) waits to connect and for the server's greeting.",
    )
    imap_allow_private: bool = Field(
        False,
        description="Allow IMAP and SMTP hosts on private, loopback or link-local addresses "
        "(a mail server on this machine or your own network; never on a shared host).",
    )
    mail_threads: int = Field(
        32,
        ge=1,
        le=1000,
        description="Threads for blocking IMAP and SMTP work (syncs, connection tests, "
        "approvals), a pool of their own: a mail server that never answers holds only these.",
    )
    mail_requests_per_user: int = Field(
        3,
        ge=1,
        le=100,
        description="Connection tests, approvals and syncs asked for by one user that may run "
        "at once (per process); more answer 429 with Retry-After.",
    )
    oauth2_refresh_command: str | None = Field(
        None,
        description="Command printing a fresh OAuth2 access token for the IMAP username given "
        "as its last argument; run when the server refuses a mailbox's stored token.",
    )
    oauth2_google_client_id: str | None = Field(
        None, description="OAuth2 client id of your Google Cloud app: shows “Connect with Google”."
    )
    oauth2_google_client_secret: SecretStr | None = Field(
        None, description="Its client secret (or RADIOSILENCE_OAUTH2_GOOGLE_CLIENT_SECRET_FILE)."
    )
    oauth2_google_client_secret_file: Path | None = Field(
        None, description="A file holding the Google client secret (e.g. a Docker secret)."
    )
    oauth2_microsoft_client_id: str | None = Field(
        None,
        description="Application (client) id of your Microsoft Entra app registration: shows "
        "“Connect with Microsoft”.",
    )
    oauth2_microsoft_client_secret: SecretStr | None = Field(
        None, description="Its client secret value (or …_CLIENT_SECRET_FILE)."
    )
    oauth2_microsoft_client_secret_file: Path | None = Field(
        None, description="A file holding the Microsoft client secret."
    )
    oauth2_microsoft_tenant: str = Field(
        "organizations",
        pattern=r"^[A-Za-z0-9.-]{1,100}$",
        description="Which accounts may sign in: organizations (any work account), common, "
        "or your tenant's id or domain.",
    )
    oauth2_oidc_discovery_url: str | None = Field(
        None,
        description="An OpenID Connect provider for self-hosted mail: its discovery URL "
        "(…/.well-known/openid-configuration). Shows “Connect with RADIOSILENCE_OAUTH2_OIDC_NAME”.",
    )
    oauth2_oidc_name: str = Field("your company", min_length=1, max_length=60)
    oauth2_oidc_client_id: str | None = None
    oauth2_oidc_client_secret: SecretStr | None = None
    oauth2_oidc_client_secret_file: Path | None = None
    oauth2_oidc_scope: str = Field(
        "openid email offline_access", description="Scopes asked of the OpenID Connect provider."
    )
    oauth2_oidc_imap_host: str | None = Field(
        None, description="IMAP server whose logins that provider's tokens open (XOAUTH2)."
    )
    oauth2_oidc_imap_port: int = Field(993, ge=1, le=65535)
    oauth2_oidc_imap_security: Literal["tls", "starttls", "plain"] = "tls"
    oauth2_refresh_margin_seconds: float = Field(
        120.0,
        ge=0,
        le=3000,
        description="An access token expiring within this many seconds is refreshed before "
        "a login.",
    )
    sync_interval_seconds: float = Field(
        60.0, ge=5, description="How often background workers poll each mailbox."
    )
    sync_interval_watched_seconds: float = Field(
        300.0,
        ge=5,
        description="How often a mailbox with an IDLE watch is polled (its INBOX is pushed; "
        "the poll reads the other folders, such as Sent).",
    )
    sync_lookback_days: int = Field(
        90, ge=1, le=3650, description="How far back the first sync of a mailbox reads."
    )
    imap_idle_mailboxes: int = Field(
        50,
        ge=0,
        le=1000,
        description="Mailboxes per worker process that get an IDLE connection for pushed mail "
        "(0: poll only). Each holds one IMAP connection and one thread.",
    )
    sync_batch_size: int = Field(
        4000,
        ge=1,
        le=5000,
        description="Messages fetched and committed together during a sync (each commit has "
        "a fixed cost: a first sync of 100,000 messages ran 1.3x faster at 4,000 than at 1,000).",
    )
    sync_reader_process_at: int = Field(
        5000,
        ge=0,
        description="A first sync reading at least this many messages fetches and "
        "parses them in a second process with its own IMAP connection, while it stores and "
        "decides on the other core (0: never; one connection and one core per sync).",
    )
    sync_reader_processes: int = Field(
        2,
        ge=1,
        le=8,
        description="How many reader processes such a first sync starts (each holds an IMAP "
        "connection more), and how many may run in one worker process at once (another large "
        "first sync meanwhile gets what is left). On 2 cores, 100,000 messages: 1 read 8,700 "
        "msg/s, 2 read 12,500, 3 no more: parsing is the larger half of the work.",
    )
    sync_reader_wait: bool = Field(
        False,
        description="Wait for the reader process's login before the first batch, instead of "
        "reading the first batches in the sync's own process meanwhile (for tests: a small "
        "mailbox is read before the child has started).",
    )
    draft_original_max_bytes: int = Field(
        40 * 1024 * 1024,
        ge=1024 * 1024,
        le=1024 * 1024 * 1024,
        description="The largest e-mail of the rep's that a follow-up draft forwards: a larger "
        "one is not fetched (its size is asked first) and the thread's next older e-mail is "
        "tried. The default is above what Gmail (25 MB) and Microsoft 365 (35 MB by default) "
        "let one send; it bounds what composing one draft holds in memory.",
    )
    sync_keep_text_prefix: bool = Field(
        False,
        description="Keep the first 2,000 characters of the inbound bodies that were read "
        "(for debugging classification). Off: only the facts derived from bodies are stored.",
    )
    lease_seconds: float = Field(
        120.0, ge=10, description="How long a worker holds a mailbox before others may take it."
    )
    workers_enabled: bool = Field(
        True, description="Run the background sync and rules workers inside `serve`."
    )
    metrics_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port on which `radiosilence worker` serves its own Prometheus metrics "
        "(at RADIOSILENCE_HOST); unset: none. `serve` always has /metrics.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        le=100 * 1024 * 1024,
        description="Largest request body accepted, in bytes; a larger one is answered 413 "
        "before it is read.",
    )
    webhook_allow_private: bool = Field(
        False,
        description="Allow webhook URLs over http and to private, loopback or link-local "
        "addresses (for a consumer on the same machine or network; never on a shared host).",
    )
    webhook_lease_seconds: float = Field(
        60.0,
        ge=1,
        description="How long a worker holds a claimed webhook delivery; a dead worker's "
        "deliveries are retried after it. Keep it well above the 15 s request timeout.",
    )

    public_url: str | None = Field(
        None,
        description="The address reps open in their browser, e.g. https://rs.example.com "
        "(links in the log, and https makes the session cookie Secure). Unset: "
        "http://HOST:PORT.",
    )
    session_hours: int = Field(
        336, ge=1, le=24 * 90, description="How long a browser stays signed in (hours)."
    )
    login_failures_per_account: int = Field(
        5,
        ge=1,
        le=1000,
        description="Failed sign-ins per account and minute; the next one is refused (429).",
    )
    login_failures_per_address: int = Field(
        20,
        ge=1,
        le=10000,
        description="Failed sign-ins per client address and minute; the next one is refused.",
    )

    @model_validator(mode="after")
    def _client_secrets(self) -> Settings:
        """A provider's client id needs its secret (or the secret's file): refused at start-up,
        not when a rep presses the button."""
        for name in ("google", "microsoft", "oidc"):
            has_id = getattr(self, f"oauth2_{name}_client_id")
            has_secret = getattr(self, f"oauth2_{name}_client_secret") or getattr(
                self, f"oauth2_{name}_client_secret_file"
            )
            if has_id and not has_secret:
                raise ValueError(
                    f"RADIOSILENCE_OAUTH2_{name.upper()}_CLIENT_SECRET (or …_FILE) is missing"
                )
        return self

    @field_validator("oauth2_oidc_discovery_url")
    @classmethod
    def _discovery_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value.strip()

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        return value

    @property
    def base_url(self) -> str:
        """Where a browser reaches this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return self.public_url or f"http://{host}:{self.port}"

    @field_validator("secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value().strip()
        if raw.lower() in PLACEHOLDER_SECRETS or len(raw) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(
                f"must be a random string of at least {MIN_SECRET_KEY_LENGTH} characters "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                f"(got {value.split('://', 1)[0]}://…)"
            )
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    """Build the settings or raise ConfigError with one line naming every bad setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            if not error["loc"]:  # a check of several settings at once names them itself
                problems.append(str(error["msg"]).removeprefix("Value error, "))
                continue
            name = "RADIOSILENCE_" + "_".join(str(p) for p in error["loc"]).upper()
            what = "is missing" if error["type"] == "missing" else error["msg"]
            problems.append(f"{name} {what}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
