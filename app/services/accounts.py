"""Users and API tokens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from app.crypto import hash_api_token, hash_password, new_api_token
from app.errors import AuthError, Conflict, InvalidInput, NotFound
from app.services.context import Context
from app.storage import users as user_store
from app.storage.engine import reading

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, kw_only=True)
class CurrentUser:
    id: int
    email: str
    is_admin: bool


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in email):
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return email


async def create_user(ctx: Context, *, email: str, password: str, is_admin: bool = False) -> int:
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    try:
        async with ctx.engine.begin() as conn:
            return await user_store.create_user(
                conn, email=email, password_hash=hash_password(password), is_admin=is_admin
            )
    except IntegrityError:
        raise Conflict(f"a user with e-mail {email} exists already") from None


async def create_token(ctx: Context, *, email: str, name: str = "cli") -> str:
    """A new API token; only its hash is stored, so it is shown this once."""
    email = normalize_email(email)
    token = new_api_token()
    async with ctx.engine.begin() as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            raise NotFound(
                f"no user with e-mail {email}: create it with `radiosilence user create`"
            )
        await user_store.add_token(
            conn, user_id=user["id"], name=name, token_hash=hash_api_token(token), prefix=token[:8]
        )
    return token


async def authenticate(ctx: Context, token: str) -> CurrentUser:
    async with reading(ctx.engine) as conn:
        row = await user_store.user_for_token(conn, hash_api_token(token))
    if row is None:
        raise AuthError("invalid API token: create one with `radiosilence token create`")
    return CurrentUser(id=row["id"], email=row["email"], is_admin=row["is_admin"])


async def ensure_user(ctx: Context, *, email: str, password: str) -> int:
    """The user `email` with `password`: created when missing, else its password replaced
    (`radiosilence demo` hands out a fresh one on every start)."""
    email = normalize_email(email)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    async with ctx.engine.begin() as conn:
        user = await user_store.get_user_by_email(conn, email)
        if user is None:
            return await user_store.create_user(
                conn, email=email, password_hash=hash_password(password), is_admin=False
            )
        await user_store.set_password_hash(conn, int(user["id"]), hash_password(password))
        return int(user["id"])
