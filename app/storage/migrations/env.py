"""Alembic environment: runs migrations over our async engine (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from app.storage.engine import make_engine
from app.storage.tables import metadata

config = context.config


# Any fixed number, the same in every process: pg_advisory_xact_lock(MIGRATION_LOCK) queues
# processes that start together on one database (an API and N workers), so one migrates and
# the others then find the schema at head. Released when the transaction ends.
MIGRATION_LOCK = 0x5241_4449_4F53  # "RADIOS"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER much
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = make_engine(config.attributes["database_url"])
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
            await conn.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit(
        "offline (SQL script) migrations are not supported; run `radiosilence migrate`"
    )
asyncio.run(_main())
