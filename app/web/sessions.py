"""The browser's side of signing in: the session cookie and the CSRF token of every form.

The session cookie carries a random token (only its hash is stored, see
services.accounts) followed by an HMAC of it under a key derived from
RADIOSILENCE_SECRET_KEY, so a forged cookie is refused before any database lookup.

CSRF: every form carries `csrf_token`, an HMAC of what binds it to this browser: the
session token when signed in, else a random `rs_csrf` cookie set with the form. A
cross-site page can make the browser send the cookies but can read neither, so it cannot
compute the field (the "signed double-submit cookie" of OWASP's cheat sheet).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

from app.config import Settings

SESSION_COOKIE = "rs_session"
ANON_COOKIE = "rs_csrf"
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class Keys:
    """Two keys derived from the secret key, one per purpose."""

    session: bytes
    csrf: bytes

    @classmethod
    def of(cls, settings: Settings) -> Keys:
        secret = settings.secret_key.get_secret_value().encode()
        return cls(
            session=hmac.new(secret, b"radiosilence session v1", hashlib.sha256).digest(),
            csrf=hmac.new(secret, b"radiosilence csrf v1", hashlib.sha256).digest(),
        )


def _mac(key: bytes, value: str) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:43]


def seal(keys: Keys, token: str) -> str:
    return f"{token}.{_mac(keys.session, token)}"


def unseal(keys: Keys, cookie: str | None) -> str | None:
    """The session token of a well-signed cookie, else None."""
    if not cookie or len(cookie) > 200:
        return None
    token, _, mac = cookie.rpartition(".")
    if not token or not hmac.compare_digest(mac, _mac(keys.session, token)):
        return None
    return token


def csrf_binding(request: Request) -> str | None:
    """What this browser's forms are bound to (see the module's docstring)."""
    keys: Keys = request.app.state.web_keys
    session = unseal(keys, request.cookies.get(SESSION_COOKIE))
    if session is not None:
        return "s:" + session
    anon = request.cookies.get(ANON_COOKIE)
    return "a:" + anon if anon and 20 <= len(anon) <= 100 else None


def csrf_token(request: Request) -> str:
    """The token for this browser's forms; sets the anonymous cookie when it has none."""
    binding = csrf_binding(request)
    if binding is None:
        anon = secrets.token_urlsafe(24)
        request.state.new_anon_cookie = anon
        binding = "a:" + anon
    keys: Keys = request.app.state.web_keys
    return _mac(keys.csrf, binding)


def csrf_valid(request: Request, submitted: object) -> bool:
    binding = csrf_binding(request)
    if binding is None or not isinstance(submitted, str):
        return False
    keys: Keys = request.app.state.web_keys
    return hmac.compare_digest(submitted.encode(), _mac(keys.csrf, binding).encode())


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.base_url.startswith("https://")


def set_cookies(request: Request, response: Response) -> None:
    """The anonymous CSRF cookie a page's form needs, if the page made one."""
    anon = getattr(request.state, "new_anon_cookie", None)
    if anon:
        response.set_cookie(
            ANON_COOKIE, anon, httponly=True, samesite="lax", secure=_secure(request), path="/"
        )


def start(request: Request, response: Response, token: str, max_age: int) -> None:
    keys: Keys = request.app.state.web_keys
    response.set_cookie(
        SESSION_COOKIE,
        seal(keys, token),
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(ANON_COOKIE, path="/")


def end(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")


def session_token(request: Request) -> str | None:
    keys: Keys = request.app.state.web_keys
    return unseal(keys, request.cookies.get(SESSION_COOKIE))
