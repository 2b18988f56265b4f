"""The async engine: SQLite (WAL, foreign keys, busy timeout) or PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 15_000
# Checkpoint the WAL every 16,384 pages (64 MB) instead of SQLite's 1,000: a first sync rewrites
# the same index pages batch after batch, and each checkpoint copied them (and synced) again;
# this cut the commit share of a 100,000-message first sync from ~48 to ~20 us per message.
# The file is cut back to that size after a checkpoint.
SQLITE_WAL_CHECKPOINT_PAGES = 16_384
SQLITE_WAL_SIZE_LIMIT = 64 * 1024 * 1024
READ_ONLY = "radiosilence_read_only"


def make_engine(database_url: str, *, echo: bool = False) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            create_private_file(Path(url.database).expanduser())
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 15})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINTs; take over.
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,
        connect_args={"server_settings": POSTGRES_SETTINGS},
    )


# asyncpg prepares every statement, and after five runs PostgreSQL may keep a generic plan
# made while a first sync's tables were nearly empty: a sequential scan, which the lookup of
# a batch's keys and the rules' messages query then kept as the tables grew (a 50,000-message
# first sync spent 26 s in the key lookup, 0.4 s with a plan per execution). Planning these
# short statements each time costs far less than one wrong plan.
POSTGRES_SETTINGS = {"plan_cache_mode": "force_custom_plan"}


def create_private_file(path: Path) -> None:
    """The SQLite file (it holds the encrypted secrets and enough to decrypt them with the
    key) readable by its owner only: created 0600 before SQLite opens it, in a folder created
    0700. SQLite gives its -wal and -shm files the database file's mode. An existing file or
    folder keeps the mode the operator gave it."""
    missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def sqlite_pragmas(dbapi_connection: Any, _record: Any = None) -> None:
    """The settings of every SQLite connection (also applied by bench/sync_bench.py)."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_CHECKPOINT_PAGES}")
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout instead of
    # one failing with "database is locked" when it upgrades a read transaction. Read-only
    # connections (see `reading`) take a plain BEGIN and never wait for writers (WAL).
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for queries that only read."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READ_ONLY: True})
        yield conn


async def ping(engine: AsyncEngine) -> None:
    """Raises when the database does not answer a trivial query (a read: never waits for a
    writer's lock on SQLite)."""
    async with reading(engine) as conn:
        await conn.execute(text("SELECT 1"))
