"""Small helpers shared by the query modules: the clock seam and dialect-aware upserts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def utcnow() -> datetime:
    return datetime.now(UTC)


async def allocate_ids(conn: AsyncConnection, table: Table, count: int) -> list[int]:
    """Ids for `count` new rows, so that a bulk INSERT needs no RETURNING (which SQLAlchemy
    can only order row by row on SQLite). PostgreSQL draws them from the column's sequence;
    on SQLite the caller's transaction holds the write lock (BEGIN IMMEDIATE), so MAX(id)
    cannot move under us."""
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        result = await conn.execute(
            text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
            {"t": table.name, "n": count},
        )
        return [int(i) for (i,) in result]
    top = (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    return list(range(int(top) + 1, int(top) + 1 + count))


async def insert_ignore(
    conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]], conflict: Sequence[str]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING on either backend: re-reading converges, never duplicates."""
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    await conn.execute(stmt, list(rows))
