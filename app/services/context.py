"""What every use case needs: the settings, the database engine and the secret box."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.crypto import SecretBox
from app.storage.engine import make_engine


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    settings: Settings
    engine: AsyncEngine
    box: SecretBox
    clock: Callable[[], datetime] = field(default=_utcnow)  # tests move time by replacing it

    @classmethod
    def create(cls, settings: Settings) -> Context:
        return cls(
            settings=settings,
            engine=make_engine(settings.database_url),
            box=SecretBox(settings.secret_key.get_secret_value()),
        )

    async def close(self) -> None:
        await self.engine.dispose()
