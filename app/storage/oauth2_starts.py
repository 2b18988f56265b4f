"""Sign-ins under way (`tables.oauth2_starts`): saved when the browser leaves for the
provider, taken back exactly once when it returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import oauth2_starts


@dataclass(frozen=True, slots=True, kw_only=True)
class NewStart:
    """A sign-in to remember until the provider sends the browser back."""

    user_id: int
    state_hash: str
    session_hash: str | None  # None: started by the API, not in a browser session
    provider: str
    verifier_enc: bytes = field(repr=False)
    mailbox_id: int | None  # set: reconnect this mailbox
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Start(NewStart):
    """A saved sign-in, as `take` hands it back."""

    id: int
    created_at: datetime


async def save(conn: AsyncConnection, start: NewStart, *, now: datetime) -> None:
    await conn.execute(insert(oauth2_starts).values(**asdict(start), created_at=now))


async def take(conn: AsyncConnection, state_hash: str, now: datetime) -> Start | None:
    """The start whose state hashes to `state_hash`, deleted as it is read: of two callbacks
    with the same state only the one whose DELETE removed the row gets it. Expired ones are
    swept on the way."""
    await conn.execute(delete(oauth2_starts).where(oauth2_starts.c.expires_at < now))
    row = (
        await conn.execute(select(oauth2_starts).where(oauth2_starts.c.state_hash == state_hash))
    ).first()
    if row is None:
        return None
    gone = await conn.execute(delete(oauth2_starts).where(oauth2_starts.c.id == row.id))
    if gone.rowcount != 1:
        return None
    return Start(
        id=row.id,
        user_id=row.user_id,
        state_hash=row.state_hash,
        session_hash=row.session_hash,
        provider=row.provider,
        verifier_enc=row.verifier_enc,
        mailbox_id=row.mailbox_id,
        expires_at=row.expires_at,
        created_at=row.created_at,
    )


async def count_for_user(conn: AsyncConnection, user_id: int, now: datetime) -> int:
    """The user's sign-ins under way that have not expired."""
    query = select(func.count()).where(
        oauth2_starts.c.user_id == user_id, oauth2_starts.c.expires_at >= now
    )
    return int((await conn.execute(query)).scalar_one())
