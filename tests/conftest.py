"""Shared fixtures: settings, a fresh database per test on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from app.services.context import Context
from app.storage.migrate import upgrade

TEST_SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"
PG_ADMIN_DSN = os.environ.get(
    "RADIOSILENCE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def make_settings(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "workers_enabled": False,
        "webhook_allow_private": True,  # test consumers listen on loopback
        "imap_allow_private": True,  # so does the Dovecot fixture
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test copies it instead of migrating again."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


async def _pg(sql: str, dsn: str = PG_ADMIN_DSN) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_rows(database_url: str, sql: str) -> list[Any]:
    """The rows `sql` returns from a test database (a URL of this suite, driver part or not)."""
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(database_url.replace("+asyncpg", ""), timeout=5)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_url(database: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{database}"


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database used as the TEMPLATE of each test's own database.

    In CI an unreachable PostgreSQL fails the run: the storage layer must be proven on both.
    """
    name = f"rs_template_{os.getpid()}"
    try:
        asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, Exception) as exc:
        message = f"PostgreSQL at {PG_ADMIN_DSN} is unreachable: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message + " (set CI=true to make this a failure)")
    upgrade(_pg_url(name))
    yield name
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, migrated database for one test, on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    yield request.getfixturevalue("database_url_pg")


@pytest.fixture
def database_url_pg(pg_template: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (for tests that pick the backend themselves)."""
    name = f"rs_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _pg_url(name)
    asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A fresh migrated SQLite database (for tests that need one backend only)."""
    path = tmp_path / "test.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[Context]:
    context = Context.create(settings)
    yield context
    await context.close()


@pytest.fixture
def shared_corpora() -> Path:
    """The corpora of real mail (../shared/corpora); skips the test without them, fails it in CI."""
    from tests.support.corpora import CORPORA, MISSING

    if not (CORPORA / "labels.json").is_file():
        if IN_CI:
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return CORPORA
