"""Users and their API tokens."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.common import utcnow
from app.storage.tables import api_tokens, users


async def create_user(
    conn: AsyncConnection, *, email: str, password_hash: str, is_admin: bool
) -> int:
    result = await conn.execute(
        insert(users)
        .values(email=email, password_hash=password_hash, is_admin=is_admin, created_at=utcnow())
        .returning(users.c.id)
    )
    return int(result.scalar_one())


async def get_user_by_email(conn: AsyncConnection, email: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(users).where(users.c.email == email))).mappings().first()
    return dict(row) if row else None


async def add_token(
    conn: AsyncConnection, *, user_id: int, name: str, token_hash: str, prefix: str
) -> int:
    result = await conn.execute(
        insert(api_tokens)
        .values(
            user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=utcnow()
        )
        .returning(api_tokens.c.id)
    )
    return int(result.scalar_one())


async def user_for_token(conn: AsyncConnection, token_hash: str) -> dict[str, Any] | None:
    query = (
        select(users.c.id, users.c.email, users.c.is_admin, api_tokens.c.id.label("token_id"))
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )
