"""What every use case needs: the settings, the database engine and the secret box; and what
the process shares between use cases: the mail thread pool, the per-user mail slots and the
mail host guard."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crypto import SecretBox
from app.mail.blocking import MailThreads
from app.services.mailslots import UserSlots
from app.storage.engine import make_engine
from app.webhooks.urlguard import UrlGuard


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    clock: Callable[[], datetime] = field(default=_utcnow)  # tests move time by replacing it
    # Leases are shared between processes, so they run on the wall clock even in a test
    # that moves `clock`.
    lease_clock: Callable[[], datetime] = field(default=_utcnow)
    mail_io: MailThreads = field(init=False, repr=False)
    mail_slots: UserSlots = field(init=False, repr=False)
    mail_guard: UrlGuard | None = field(default=None, repr=False)  # see services.mailhosts
    # One token refresh at a time per mailbox (see services.oauth2_tokens)
    oauth2_locks: dict[int, asyncio.Lock] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.mail_io = MailThreads(self.settings.mail_threads)
        self.mail_slots = UserSlots(
            self.settings.mail_requests_per_user,
            retry_after=math.ceil(self.settings.imap_test_timeout_seconds),
        )

    @classmethod
    def create(cls, settings: Settings) -> Context:
        return cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            box=SecretBox(settings.secret_key.get_secret_value()),
        )

    async def close(self) -> None:
        self.mail_io.close()
        await self.engine.dispose()
