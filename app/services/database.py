"""The database schema brought up to date: what every command does before its first use
case, so a first command on a new machine just works."""

from __future__ import annotations

from app.config import Settings
from app.storage.migrate import upgrade


def upgrade_schema(settings: Settings) -> None:
    """Apply the migrations not yet applied (none: nothing happens)."""
    upgrade(settings.database_url)
