"""Users, API tokens and browser sessions: who may do what, and since when no longer.

Every credential is checked against the database on each use, so revoking a token,
signing out or disabling a user takes effect at once, in every process.
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy.exc import IntegrityError

from app.crypto import hash_api_token, hash_password, new_api_token, verify_password
from app.errors import AuthError, Conflict, InvalidInput, NotFound, RateLimited
from app.services.context import Context
from app.storage import users as user_store
from app.storage.engine import reading
from app.storage.users import TokenRow as TokenRow  # re-exported: what list_tokens returns
from app.storage.users import UserRow

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is an attack
MAX_TOKEN_NAME = 100
LOGIN_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, kw_only=True)
class CurrentUser:
    id: int
    email: str
    is_admin: bool


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in email) or len(email) > 320:
        raise InvalidInput(f"{email[:100]!r} is not an e-mail address")
    return email


async def _hashed(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU on purpose: never on the event loop, where it
    # would stall every other request while one user signs up or in.
    return await asyncio.to_thread(hash_password, password)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


async def create_user(ctx: Context, *, email: str, password: str, is_admin: bool = False) -> int:
    email = normalize_email(email)
    _check_password(password)
    password_hash = await _hashed(password)
    try:
        async with ctx.engine.begin() as conn:
            return await user_store.create_user(
                conn, email=email, password_hash=password_hash, is_admin=is_admin
            )
    except IntegrityError:
        raise Conflict(f"a user with e-mail {email} exists already") from None


async def create_first_user(ctx: Context, *, email: str, password: str) -> int:
    """The first administrator; refused once one exists (the setup link must not make a
    second after someone else used it). Users made before (the demo's) do not count."""
    email = normalize_email(email)
    _check_password(password)
    password_hash = await _hashed(password)
    async with ctx.engine.begin() as conn:
        if await user_store.count_admins(conn):
            raise Conflict("an administrator exists already: sign in instead")
        return await user_store.create_user(
            conn, email=email, password_hash=password_hash, is_admin=True
        )


async def has_admin(ctx: Context) -> bool:
    async with reading(ctx.engine) as conn:
        return await user_store.count_admins(conn) > 0


async def list_users(ctx: Context) -> list[UserRow]:
    async with reading(ctx.engine) as conn:
        return await user_store.list_users(conn)


async def set_user_disabled(ctx: Context, *, email: str, disabled: bool) -> UserRow:
    """Disable (or enable again) a user: a disabled user's tokens and sessions stop working
    at once, and signing in is refused. Their mailboxes stay, but nobody can reach them."""
    email = normalize_email(email)
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}")
        await user_store.set_disabled(conn, int(user["id"]), now if disabled else None)
        if disabled:
            await user_store.delete_sessions_of(conn, int(user["id"]), now=now)
        row = await user_store.get_user(conn, int(user["id"]))
    assert row is not None
    return row


# ----------------------------------------------------------------------------- API tokens


async def create_token(
    ctx: Context, *, email: str, name: str = "cli", expires_at: datetime | None = None
) -> str:
    """A new API token; only its hash is stored, so it is shown this once."""
    email = normalize_email(email)
    async with reading(ctx.engine) as conn:
        user = await user_store.get_user_by_email(conn, email)
    if user is None:
        raise NotFound(f"no user with e-mail {email}: create it with `radiosilence user create`")
    return await create_token_for(ctx, user_id=int(user["id"]), name=name, expires_at=expires_at)


async def create_token_for(
    ctx: Context, *, user_id: int, name: str, expires_at: datetime | None = None
) -> str:
    name = " ".join(name.split())[:MAX_TOKEN_NAME] or "token"
    if expires_at is not None and expires_at <= ctx.clock():
        raise InvalidInput("the expiry must be in the future")
    token = new_api_token()
    async with ctx.engine.begin() as conn:
        await user_store.add_token(
            conn,
            user_id=user_id,
            name=name,
            token_hash=hash_api_token(token),
            prefix=token[:8],
            expires_at=expires_at,
        )
    return token


async def list_tokens(ctx: Context, *, user_id: int) -> list[TokenRow]:
    async with reading(ctx.engine) as conn:
        return await user_store.list_tokens(conn, user_id)


async def list_tokens_of(ctx: Context, *, email: str) -> list[TokenRow]:
    email = normalize_email(email)
    async with reading(ctx.engine) as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            raise NotFound(f"no user with e-mail {email}")
        return await user_store.list_tokens(conn, int(user["id"]))


async def revoke_token(ctx: Context, *, user_id: int, token_id: int) -> None:
    """Delete the token: its next request is refused."""
    async with ctx.engine.begin() as conn:
        if not await user_store.delete_token(conn, user_id=user_id, token_id=token_id):
            raise NotFound(f"no token {token_id}")


async def revoke_token_of(ctx: Context, *, email: str, token_id: int) -> None:
    email = normalize_email(email)
    async with reading(ctx.engine) as conn:
        user = await user_store.get_user_by_email(conn, email)
    if user is None:
        raise NotFound(f"no user with e-mail {email}")
    await revoke_token(ctx, user_id=int(user["id"]), token_id=token_id)


async def authenticate(ctx: Context, token: str) -> CurrentUser:
    now = ctx.clock()
    async with reading(ctx.engine) as conn:
        row = await user_store.user_for_token(conn, hash_api_token(token), now=now)
    if row is None:
        raise AuthError(
            "invalid, expired or revoked API token: create one with `radiosilence token create`"
        )
    last = row["last_used_at"]
    if last is None or now - last >= user_store.LAST_USED_RESOLUTION:
        async with ctx.engine.begin() as conn:
            await user_store.touch_token(conn, int(row["token_id"]), now)
    return CurrentUser(id=row["id"], email=row["email"], is_admin=row["is_admin"])


# ----------------------------------------------------------------------------- sign-in


@cache
def _dummy_hash() -> str:
    """Checked when the account does not exist, so that a failed sign-in takes as long
    whether or not the e-mail is known."""
    return hash_password(secrets.token_urlsafe(16))


def _failure_keys(email: str, client: str) -> list[str]:
    return [f"email:{email[:320]}", f"ip:{client[:64]}"]


async def sign_in(ctx: Context, *, email: str, password: str, client: str) -> CurrentUser:
    """Check the password, within the per-account and per-address limits of failed tries
    (RateLimited beyond them, whatever the password). AuthError says nothing about which of
    e-mail and password was wrong."""
    email = email.strip().lower()[:320]
    now = ctx.clock()
    keys = _failure_keys(email, client)
    limits = {
        keys[0]: ctx.settings.login_failures_per_account,
        keys[1]: ctx.settings.login_failures_per_address,
    }
    async with reading(ctx.engine) as conn:
        seen = await user_store.login_failures_since(conn, keys, now - LOGIN_WINDOW)
        user = await user_store.get_user_by_email(conn, email)
    for key, (count, oldest) in seen.items():
        if count >= limits[key]:
            wait = (oldest + LOGIN_WINDOW - now).total_seconds() if oldest else 60
            raise RateLimited(
                "too many failed sign-ins: wait a minute before trying again",
                retry_after=int(wait) + 1,
            )
    password = password[:MAX_PASSWORD_LENGTH]
    stored = user["password_hash"] if user else await asyncio.to_thread(_dummy_hash)
    valid = await asyncio.to_thread(verify_password, stored, password)
    if user is None or not valid or user["disabled_at"] is not None:
        async with ctx.engine.begin() as conn:
            await user_store.record_login_failure(conn, keys, now=now, keep=LOGIN_WINDOW * 10)
        raise AuthError("wrong e-mail or password")
    return CurrentUser(id=user["id"], email=user["email"], is_admin=user["is_admin"])


async def start_session(ctx: Context, *, user_id: int) -> str:
    """A new browser session; the token goes into the cookie, its hash into the database."""
    token = secrets.token_urlsafe(32)
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        await user_store.add_session(
            conn,
            user_id=user_id,
            token_hash=hash_api_token(token),
            now=now,
            expires_at=now + timedelta(hours=ctx.settings.session_hours),
        )
    return token


async def session_user(ctx: Context, token: str) -> CurrentUser | None:
    async with reading(ctx.engine) as conn:
        row = await user_store.user_for_session(conn, hash_api_token(token), now=ctx.clock())
    if row is None:
        return None
    return CurrentUser(id=row.id, email=row.email, is_admin=row.is_admin)


async def end_session(ctx: Context, token: str) -> None:
    async with ctx.engine.begin() as conn:
        await user_store.delete_session(conn, hash_api_token(token))


async def ensure_user(ctx: Context, *, email: str, password: str) -> int:
    """The user `email` with `password`: created when missing, else its password replaced
    (`radiosilence demo` hands out a fresh one on every start)."""
    email = normalize_email(email)
    _check_password(password)
    password_hash = await _hashed(password)
    async with ctx.engine.begin() as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            return await user_store.create_user(
                conn, email=email, password_hash=password_hash, is_admin=False
            )
        user_id = int(user["id"])
        await user_store.set_password_hash(conn, user_id, password_hash)
        # A fresh start: enabled, and signed out everywhere it was signed in before.
        await user_store.set_disabled(conn, user_id, None)
        await user_store.delete_sessions_of(conn, user_id, now=ctx.clock())
        return user_id
