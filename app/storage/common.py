"""Small helpers shared by the query modules: the clock seam and dialect-aware upserts."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Table, func, select, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.storage.tables import UTCDateTime, id_sequences


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
    # MAX(id) alone would hand a deleted newest row's id out again; the stored counter
    # remembers what was given. Both are read: rows inserted without this function count too.
    top = (await conn.execute(select(func.coalesce(func.max(table.c.id), 0)))).scalar_one()
    given = (
        await conn.execute(
            select(id_sequences.c.next_id).where(id_sequences.c.table_name == table.name)
        )
    ).scalar_one_or_none()
    start = max(int(top) + 1, int(given or 0))
    await _remember_next_id(conn, table.name, start + count)
    return list(range(start, start + count))


async def _remember_next_id(conn: AsyncConnection, name: str, next_id: int) -> None:
    stmt = sqlite.insert(id_sequences).values(table_name=name, next_id=next_id)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["table_name"], set_={"next_id": next_id})
    )


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_value(value: Any) -> str | None:
    if value is None:
        return None
    if not value and isinstance(value, list | tuple):
        return "[]"  # most address and reference lists are empty: skip the encoder
    return _json(value)


def _sqlite_time(value: datetime | None) -> str | None:
    # Exactly SQLAlchemy's SQLite DATETIME text, so that stored values compare as strings.
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _pg_time(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


async def bulk_insert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> None:
    """INSERT many rows with one executemany at driver level, for the first sync's hot path.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own work there, so the
    values are converted here, once per column kind (JSON, aware datetimes), and handed to the
    driver as tuples. Every row must have the same keys. With `ignore_conflicts_on`, rows that
    exist already are skipped (ON CONFLICT DO NOTHING, on both backends).
    """
    if not rows:
        return
    names = list(rows[0])
    # Scalar Python-side defaults (False, 0, "") that SQLAlchemy would have filled in.
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.name not in rows[0] and isinstance(c.default, ScalarElementColumnDefault)
    }
    names += list(defaults)
    postgres = conn.dialect.name == "postgresql"
    quote = conn.dialect.identifier_preparer.quote
    converters: list[Callable[[Any], Any] | None] = []
    for name in names:
        kind = table.c[name].type
        if isinstance(kind, JSON):
            converters.append(_json_value)
        elif isinstance(kind, UTCDateTime):
            converters.append(_pg_time if postgres else _sqlite_time)
        else:
            converters.append(None)
    marks = ", ".join(f"${i}" if postgres else "?" for i in range(1, len(names) + 1))
    # Only quoted names of our own tables and columns go into the text; values are bound.
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
        f"VALUES ({marks})"
    )
    if ignore_conflicts_on:
        sql += f" ON CONFLICT ({', '.join(quote(n) for n in ignore_conflicts_on)}) DO NOTHING"
    columns: list[list[Any]] = []  # column by column: far cheaper than a generator per row
    for name, convert in zip(names, converters, strict=True):
        if name in defaults:
            columns.append([defaults[name]] * len(rows))
        elif convert is None:
            columns.append([row[name] for row in rows])
        else:
            columns.append([convert(row[name]) for row in rows])
    params = list(zip(*columns, strict=True))
    await conn.exec_driver_sql(sql, params)
