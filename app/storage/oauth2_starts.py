"""Sign-ins under way (`tables.oauth2_starts`): saved when the browser leaves for the
provider, taken back exactly once when it returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import utcnow
from app.storage.tables import oauth2_starts


async def save(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(oauth2_starts).values(**values, created_at=utcnow()))


async def take(conn: AsyncConnection, state_hash: str, now: datetime) -> dict[str, Any] | None:
    """The start whose state hashes to `state_hash`, deleted as it is read: of two callbacks
    with the same state only the one whose DELETE removed the row gets it. Expired ones are
    swept on the way."""
    await conn.execute(delete(oauth2_starts).where(oauth2_starts.c.expires_at < now))
    row = (
        (await conn.execute(select(oauth2_starts).where(oauth2_starts.c.state_hash == state_hash)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    gone = await conn.execute(delete(oauth2_starts).where(oauth2_starts.c.id == row["id"]))
    return dict(row) if gone.rowcount == 1 else None


async def count_for_user(conn: AsyncConnection, user_id: int, now: datetime) -> int:
    """The user's sign-ins under way that have not expired."""
    query = select(func.count()).where(
        oauth2_starts.c.user_id == user_id, oauth2_starts.c.expires_at >= now
    )
    return int((await conn.execute(query)).scalar_one())
