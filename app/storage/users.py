"""Users, their API tokens, their browser sessions and the failed sign-ins of late."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import api_tokens, login_failures, users, web_sessions

# A token's last use is written at most this often: a write per request would serialise
# every API call behind SQLite's one writer.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class UserRow:
    id: int
    email: str
    is_admin: bool
    created_at: datetime
    disabled_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class UserCredentials:
    """A user with the password hash, for signing in: never beyond the service."""

    id: int
    email: str
    is_admin: bool
    password_hash: str
    disabled_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class TokenUser:
    """The user an API token belongs to, with the token's id and last use."""

    id: int
    email: str
    is_admin: bool
    token_id: int
    last_used_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class TokenRow:
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


def _user(row: Any) -> UserRow:
    return UserRow(
        id=int(row.id),
        email=row.email,
        is_admin=bool(row.is_admin),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


_USER_COLUMNS = (
    users.c.id,
    users.c.email,
    users.c.is_admin,
    users.c.created_at,
    users.c.disabled_at,
)


async def create_user(
    conn: AsyncConnection, *, email: str, password_hash: str, is_admin: bool, now: datetime
) -> int:
    result = await conn.execute(
        insert(users)
        .values(email=email, password_hash=password_hash, is_admin=is_admin, created_at=now)
        .returning(users.c.id)
    )
    return int(result.scalar_one())


async def get_user_by_email(conn: AsyncConnection, email: str) -> UserCredentials | None:
    query = select(
        users.c.id, users.c.email, users.c.is_admin, users.c.password_hash, users.c.disabled_at
    ).where(users.c.email == email)
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return UserCredentials(
        id=int(row.id),
        email=row.email,
        is_admin=bool(row.is_admin),
        password_hash=row.password_hash,
        disabled_at=row.disabled_at,
    )


async def get_user(conn: AsyncConnection, user_id: int) -> UserRow | None:
    row = (await conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id))).first()
    return _user(row) if row else None


async def list_users(conn: AsyncConnection) -> list[UserRow]:
    rows = await conn.execute(select(*_USER_COLUMNS).order_by(users.c.id))
    return [_user(r) for r in rows]


async def count_admins(conn: AsyncConnection) -> int:
    query = select(func.count()).select_from(users).where(users.c.is_admin == true())
    return int((await conn.execute(query)).scalar_one())


async def set_disabled(conn: AsyncConnection, user_id: int, at: datetime | None) -> bool:
    result = await conn.execute(update(users).where(users.c.id == user_id).values(disabled_at=at))
    return bool(result.rowcount)


# ----------------------------------------------------------------------------- API tokens


async def add_token(
    conn: AsyncConnection,
    *,
    user_id: int,
    name: str,
    token_hash: str,
    prefix: str,
    expires_at: datetime | None = None,
    now: datetime,
) -> int:
    result = await conn.execute(
        insert(api_tokens)
        .values(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            prefix=prefix,
            created_at=now,
            expires_at=expires_at,
        )
        .returning(api_tokens.c.id)
    )
    return int(result.scalar_one())


async def user_for_token(
    conn: AsyncConnection, token_hash: str, *, now: datetime
) -> TokenUser | None:
    """The enabled user owning this unexpired token (and the token's id and last use)."""
    query = (
        select(
            users.c.id,
            users.c.email,
            users.c.is_admin,
            api_tokens.c.id.label("token_id"),
            api_tokens.c.last_used_at,
        )
        .join(api_tokens, api_tokens.c.user_id == users.c.id)
        .where(
            api_tokens.c.token_hash == token_hash,
            users.c.disabled_at.is_(None),
            or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
        )
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return TokenUser(
        id=int(row.id),
        email=row.email,
        is_admin=bool(row.is_admin),
        token_id=int(row.token_id),
        last_used_at=row.last_used_at,
    )


async def touch_token(conn: AsyncConnection, token_id: int, now: datetime) -> None:
    await conn.execute(
        update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now)
    )


async def list_tokens(conn: AsyncConnection, user_id: int) -> list[TokenRow]:
    query = (
        select(
            api_tokens.c.id,
            api_tokens.c.name,
            api_tokens.c.prefix,
            api_tokens.c.created_at,
            api_tokens.c.last_used_at,
            api_tokens.c.expires_at,
        )
        .where(api_tokens.c.user_id == user_id)
        .order_by(api_tokens.c.id)
    )
    return [
        TokenRow(
            id=int(r.id),
            name=r.name,
            prefix=r.prefix,
            created_at=r.created_at,
            last_used_at=r.last_used_at,
            expires_at=r.expires_at,
        )
        for r in await conn.execute(query)
    ]


async def delete_token(conn: AsyncConnection, *, user_id: int, token_id: int) -> bool:
    result = await conn.execute(
        delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.user_id == user_id)
    )
    return bool(result.rowcount)


# ----------------------------------------------------------------------------- sessions


async def add_session(
    conn: AsyncConnection, *, user_id: int, token_hash: str, now: datetime, expires_at: datetime
) -> None:
    await conn.execute(
        insert(web_sessions).values(
            user_id=user_id, token_hash=token_hash, created_at=now, expires_at=expires_at
        )
    )


async def user_for_session(
    conn: AsyncConnection, token_hash: str, *, now: datetime
) -> UserRow | None:
    """The enabled user of this unexpired session."""
    query = (
        select(*_USER_COLUMNS)
        .join(web_sessions, web_sessions.c.user_id == users.c.id)
        .where(
            web_sessions.c.token_hash == token_hash,
            web_sessions.c.expires_at > now,
            users.c.disabled_at.is_(None),
        )
    )
    row = (await conn.execute(query)).first()
    return _user(row) if row else None


async def delete_session(conn: AsyncConnection, token_hash: str) -> None:
    await conn.execute(delete(web_sessions).where(web_sessions.c.token_hash == token_hash))


async def delete_sessions_of(conn: AsyncConnection, user_id: int, *, now: datetime) -> None:
    """Every session of the user, and anyone's expired ones (they accumulate otherwise)."""
    await conn.execute(
        delete(web_sessions).where(
            or_(web_sessions.c.user_id == user_id, web_sessions.c.expires_at <= now)
        )
    )


# ----------------------------------------------------------------------------- sign-in limit


async def record_login_failure(
    conn: AsyncConnection, keys: list[str], *, now: datetime, keep: timedelta
) -> None:
    await conn.execute(delete(login_failures).where(login_failures.c.at < now - keep))
    await conn.execute(insert(login_failures), [{"key": k, "at": now} for k in keys])


async def login_failures_since(
    conn: AsyncConnection, keys: list[str], since: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """Per key: failures since `since`, and the oldest of them (when the window frees up)."""
    query = (
        select(login_failures.c.key, func.count(), func.min(login_failures.c.at))
        .where(login_failures.c.key.in_(keys), login_failures.c.at >= since)
        .group_by(login_failures.c.key)
    )
    return {key: (int(n), oldest) for key, n, oldest in await conn.execute(query)}


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        update(users).where(users.c.id == user_id).values(password_hash=password_hash)
    )
