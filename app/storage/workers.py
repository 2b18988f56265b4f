"""Which worker processes are alive: each renews its row while it runs and deletes it when
it stops; a SIGKILLed worker's row simply ages out."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import workers


async def heartbeat(conn: AsyncConnection, owner: str, now: datetime) -> None:
    """Say `owner` is alive at `now` (an update, else an insert: no dialect-specific upsert)."""
    result = await conn.execute(update(workers).where(workers.c.owner == owner).values(seen_at=now))
    if result.rowcount == 0:
        await conn.execute(insert(workers).values(owner=owner, started_at=now, seen_at=now))


async def count_alive(conn: AsyncConnection, now: datetime, within: timedelta) -> int:
    query = select(func.count()).select_from(workers).where(workers.c.seen_at >= now - within)
    return int((await conn.execute(query)).scalar_one())


async def forget(conn: AsyncConnection, owner: str, *, older_than: datetime | None = None) -> None:
    """Delete `owner`'s row (a clean stop), and the rows not renewed since `older_than`."""
    await conn.execute(delete(workers).where(workers.c.owner == owner))
    if older_than is not None:
        await conn.execute(delete(workers).where(workers.c.seen_at < older_than))
