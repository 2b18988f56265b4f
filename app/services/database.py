"""The database as a whole: its schema brought up to date (what every command does before
its first use case, so a first command on a new machine just works), and whether it answers."""

from __future__ import annotations

from app.config import Settings
from app.services.context import Context
from app.storage.engine import ping
from app.storage.migrate import upgrade


def upgrade_schema(settings: Settings) -> None:
    """Apply the migrations not yet applied (none: nothing happens)."""
    upgrade(settings.database_url)


async def check_ready(ctx: Context) -> None:
    """Raises when the database does not answer (what /readyz reports)."""
    await ping(ctx.engine)
