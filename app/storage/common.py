"""Small helpers shared by the query modules: the clock seam and dialect-aware bulk writes."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Dialect, Table, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.schema import ScalarElementColumnDefault

from app.storage.tables import UTCDateTime
from app.storage.values import driver_flag, driver_time, json_value


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
    result = await conn.exec_driver_sql(_allocate_sql(table.name), (table.name, count))
    end = int(result.scalar_one())
    return list(range(end - count, end))


@lru_cache
def _allocate_sql(name: str) -> str:
    # MAX(id) alone would hand a deleted newest row's id out again; the stored counter
    # remembers what was given. Both are read (rows inserted without this function count
    # too), in one statement: it runs twice per stored batch.
    return (
        "INSERT INTO id_sequences (table_name, next_id) "  # noqa: S608 (our own table name)
        f'VALUES (?1, max((SELECT coalesce(max(id), 0) FROM "{name}") + 1, '
        "coalesce((SELECT next_id FROM id_sequences WHERE table_name = ?1), 0)) + ?2) "
        "ON CONFLICT (table_name) DO UPDATE SET next_id = excluded.next_id RETURNING next_id"
    )


def time_value(dialect: Dialect) -> Callable[[datetime | None], Any]:
    """How an aware datetime goes to the driver: SQLite text or a UTC datetime."""
    return driver_time(dialect.name)


def flag_value(dialect: Dialect) -> Callable[[bool], Any]:
    """How a boolean goes to the driver (`values.driver_flag`)."""
    return driver_flag(dialect.name)


def driver_sql(dialect: Dialect, sql: str) -> str:
    """SQL written with `?` placeholders, as the connection's driver takes it."""
    return _numbered(sql) if dialect.name == "postgresql" else sql


@lru_cache(maxsize=256)
def _numbered(sql: str) -> str:
    parts = sql.split("?")
    return parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], 1))


# From this many rows up, PostgreSQL gets them by COPY: below, the extra round trips (the
# staging table's, COPY's own) cost about what executemany's per-row Bind/Execute does.
# Measured on thread_keys rows in one transaction: through the staging table COPY loses at
# 10 rows and wins by 20% from 50; straight COPY wins from 10 rows, 25-28% from 50 on.
COPY_MIN_ROWS = 50


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> None:
    """INSERT rows of driver values (see `time_value`, `flag_value`, `values.json_value`), in the
    order of `names`: the first sync's hot path. One executemany, or on PostgreSQL from
    `COPY_MIN_ROWS` rows up a binary COPY, in the caller's transaction either way. With
    `ignore_conflicts_on`, rows that exist already are skipped (ON CONFLICT DO NOTHING)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        await _copy_rows(conn, table, tuple(names), rows, tuple(ignore_conflicts_on))
        return
    sql = _insert_sql(conn.dialect, table.name, tuple(names), tuple(ignore_conflicts_on))
    await conn.exec_driver_sql(sql, list(rows))


@lru_cache(maxsize=256)
def _insert_sql(
    dialect: Dialect, table: str, names: tuple[str, ...], conflict: tuple[str, ...]
) -> str:
    quote = dialect.identifier_preparer.quote
    # Only quoted names of our own tables and columns go into the text; values are bound.
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(n) for n in names)}) "  # noqa: S608
        f"VALUES ({', '.join('?' * len(names))})"
    )
    if conflict:
        sql += f" ON CONFLICT ({', '.join(quote(n) for n in conflict)}) DO NOTHING"
    return driver_sql(dialect, sql)


async def _copy_rows(
    conn: AsyncConnection,
    table: Table,
    names: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    conflict: tuple[str, ...],
) -> None:
    """COPY through asyncpg, which SQLAlchemy has no statement for. The rows are the values
    executemany takes: COPY encodes them with the same codecs (JSON as the text SQLAlchemy's
    codec passes, aware datetimes, bools). COPY knows no ON CONFLICT: rows that may exist go
    to a staging table first, then across with INSERT … SELECT."""
    import asyncpg

    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, asyncpg.Connection)
    if not driver.is_in_transaction():
        # SQLAlchemy's adapter sends BEGIN with its first statement: without one yet, COPY
        # would commit on its own and survive the caller's rollback.
        await conn.exec_driver_sql("SELECT 1")
    statement = f"COPY {table.name}"
    try:
        if not conflict:
            await driver.copy_records_to_table(table.name, records=rows, columns=names)
            return
        stage, create, move = _staging_sql(table.name, names, conflict)
        statement = move
        await driver.execute(create)
        await driver.copy_records_to_table(stage, records=rows, columns=names)
        await driver.execute(move)
    except asyncpg.IntegrityConstraintViolationError as error:
        # The exceptions executemany raises, so that callers catch one kind on both paths.
        raise IntegrityError(statement, None, error) from error
    except asyncpg.PostgresError as error:
        raise DBAPIError(statement, None, error) from error


@lru_cache(maxsize=64)
def _staging_sql(
    table: str, names: tuple[str, ...], conflict: tuple[str, ...]
) -> tuple[str, str, str]:
    """The staging table of one column list, and the statements that make it and empty it
    into `table`. It lives as long as the session (created again after a rollback undid it):
    a new table per batch (ON COMMIT DROP) cost twice as much per row at 50-100 rows, for its
    catalog writes. ON COMMIT DELETE ROWS and the DELETE keep its rows from ever reaching a
    second INSERT … SELECT."""
    digest = zlib.crc32(",".join(names).encode())
    stage = f"copy_{table}_{digest:08x}"
    columns = ", ".join(f'"{n}"' for n in names)
    keys = ", ".join(f'"{n}"' for n in conflict)
    # Only names of our own tables and columns go into the text; the rows go by COPY.
    create = (
        f'CREATE TEMP TABLE IF NOT EXISTS "{stage}" ON COMMIT DELETE ROWS '  # noqa: S608
        f'AS SELECT {columns} FROM "{table}" WITH NO DATA'
    )
    move = (
        f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM "{stage}" '  # noqa: S608
        f'ON CONFLICT ({keys}) DO NOTHING; DELETE FROM "{stage}"'
    )
    return stage, create, move


async def bulk_insert(
    conn: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> None:
    """INSERT many rows given as dicts, converted here once per column kind (JSON, aware
    datetimes, booleans) and handed to the driver as tuples: SQLAlchemy's per-row parameter
    processing costs more than the database's own work. Every row must have the same keys.
    Columns left out get their scalar Python-side default (False, 0, "")."""
    if not rows:
        return
    names = list(rows[0])
    defaults = {
        c.name: c.default.arg
        for c in table.columns
        if c.name not in rows[0] and isinstance(c.default, ScalarElementColumnDefault)
    }
    columns: list[list[Any]] = []  # column by column: far cheaper than a generator per row
    for name in [*names, *defaults]:
        convert = _converter(conn.dialect, table, name)
        if name in defaults:
            value = defaults[name] if convert is None else convert(defaults[name])
            columns.append([value] * len(rows))
        elif convert is None:
            columns.append([row[name] for row in rows])
        else:
            columns.append([convert(row[name]) for row in rows])
    params = list(zip(*columns, strict=True))
    await insert_rows(
        conn, table, [*names, *defaults], params, ignore_conflicts_on=ignore_conflicts_on
    )


def _converter(dialect: Dialect, table: Table, name: str) -> Callable[[Any], Any] | None:
    kind = table.c[name].type
    if isinstance(kind, JSON):
        return json_value
    if isinstance(kind, UTCDateTime):
        return time_value(dialect)
    if isinstance(kind, Boolean):
        flag = flag_value(dialect)
        return lambda value: None if value is None else flag(value)
    return None
