"""The OAuth2 client's side of a sign-in, run by Authlib: the authorization URL (with `state`
and a PKCE S256 challenge), the code exchanged for tokens, refreshes and revocation.

Tokens and the client secret never reach a log line. The provider's errors leave as
`GrantRefused` (the grant is gone: the rep must sign in again) or `ProviderError`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from authlib.deprecate import AuthlibDeprecationWarning

from app.errors import InvalidInput, MailAuthError, MailConnectionError
from app.mail.oauth2_providers import Endpoints, Provider

with warnings.catch_warnings():
    # Authlib 1.9.10 warns on import that it prefers httpx2 over httpx; its httpx client
    # works unchanged with the httpx the project already uses.
    warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger(__name__)
HTTP_TIMEOUT = httpx.Timeout(15.0)
DISCOVERY_TTL = 3600.0  # seconds a discovery document is trusted before it is read again
DISCOVERY_RETRY = 60.0  # seconds a failed read is remembered: pages with buttons never wait on it
_discovered: dict[str, tuple[float, Endpoints, str]] = {}
_discovery_failed: dict[str, float] = {}


class ProviderError(MailConnectionError):
    """The provider could not be reached or answered something unusable (worth a retry)."""


class GrantRefused(MailAuthError):
    """The provider refused the grant (revoked, expired, password changed): sign in again."""


@dataclass(frozen=True, kw_only=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: datetime
    id_token: str | None = field(repr=False, default=None)


def _client(provider: Provider, redirect_uri: str | None = None) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
        timeout=HTTP_TIMEOUT,
    )


async def endpoints(provider: Provider) -> Endpoints:
    """The provider's endpoints: fixed ones, or its discovery document's (cached)."""
    if provider.endpoints is not None:
        return provider.endpoints
    assert provider.discovery_url is not None
    found, _ = await discover(provider.discovery_url)
    return found


_DISCOVERY_FAILED = (
    "the sign-in provider's discovery document could not be read: ask your operator to check "
    "RADIOSILENCE_OAUTH2_OIDC_DISCOVERY_URL"
)


async def discover(url: str) -> tuple[Endpoints, str]:
    """(endpoints, issuer) from an OpenID Connect discovery document."""
    cached = _discovered.get(url)
    if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL:
        return cached[1], cached[2]
    failed = _discovery_failed.get(url)
    if failed is not None and time.monotonic() - failed < DISCOVERY_RETRY:
        raise ProviderError(_DISCOVERY_FAILED)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
            answer = await http.get(url, headers={"Accept": "application/json"})
        answer.raise_for_status()
        doc = answer.json()
        found = Endpoints(
            authorize=str(doc["authorization_endpoint"]),
            token=str(doc["token_endpoint"]),
            revocation=str(doc["revocation_endpoint"]) if doc.get("revocation_endpoint") else None,
        )
        issuer = str(doc.get("issuer", ""))
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        log.warning("oauth2.discovery_failed url=%s error=%s", url, exc)
        _discovery_failed[url] = time.monotonic()
        raise ProviderError(_DISCOVERY_FAILED) from None
    _discovery_failed.pop(url, None)
    _discovered[url] = (time.monotonic(), found, issuer)
    return found, issuer


async def authorization_url(
    provider: Provider, *, redirect_uri: str, state: str, code_verifier: str
) -> str:
    where = await endpoints(provider)
    async with _client(provider, redirect_uri) as client:
        url, _ = client.create_authorization_url(
            where.authorize,
            state=state,
            code_verifier=code_verifier,
            **dict(provider.authorize_params),
        )
    return str(url)


def _tokens(answer: dict[str, Any], *, now: datetime, refresh_token: str | None) -> Tokens:
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise ProviderError("the sign-in provider answered without an access token")
    lifetime = answer.get("expires_in")
    seconds = float(lifetime) if isinstance(lifetime, int | float | str) else 3600.0
    refresh = answer.get("refresh_token")
    return Tokens(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else refresh_token,
        expires_at=now + timedelta(seconds=seconds),
        id_token=answer.get("id_token") if isinstance(answer.get("id_token"), str) else None,
    )


async def exchange_code(
    provider: Provider, *, redirect_uri: str, code: str, code_verifier: str
) -> Tokens:
    """The authorization code and the PKCE verifier traded for tokens."""
    where = await endpoints(provider)
    now = datetime.now(UTC)
    try:
        async with _client(provider, redirect_uri) as client:
            answer = await client.fetch_token(
                where.token,
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
    except OAuthError as exc:
        raise MailAuthError(
            f"{provider.label} did not accept the sign-in ({exc.error}): please try again"
        ) from None
    except httpx.HTTPError as exc:
        log.warning("oauth2.token_failed provider=%s error=%s", provider.key, exc)
        raise ProviderError(f"{provider.label} could not be reached: please try again") from None
    return _tokens(dict(answer), now=now, refresh_token=None)


def sign_in_again(provider: Provider) -> str:
    return (
        f"{provider.label} no longer accepts this mailbox's sign-in (it was revoked or has "
        f"expired): sign in again with “Reconnect with {provider.label}”"
    )


async def refresh(provider: Provider, refresh_token: str) -> Tokens:
    """A new access token; GrantRefused when the provider says the grant is gone."""
    where = await endpoints(provider)
    now = datetime.now(UTC)
    try:
        async with _client(provider) as client:
            answer = await client.refresh_token(where.token, refresh_token=refresh_token)
    except OAuthError as exc:
        if exc.error in ("invalid_grant", "unauthorized_client", "invalid_client"):
            raise GrantRefused(sign_in_again(provider)) from None
        log.warning("oauth2.refresh_refused provider=%s error=%s", provider.key, exc.error)
        raise ProviderError(
            f"{provider.label} refused to renew the access ({exc.error}); trying again later"
        ) from None
    except httpx.HTTPError as exc:
        log.warning("oauth2.refresh_failed provider=%s error=%s", provider.key, exc)
        raise ProviderError(
            f"{provider.label} could not be reached to renew the access; trying again later"
        ) from None
    return _tokens(dict(answer), now=now, refresh_token=refresh_token)


async def revoke(provider: Provider, token: str) -> bool:
    """Revoke the grant (RFC 7009) where the provider offers it; False when it does not or
    when it failed (logged: forgetting the token here must not wait on the provider)."""
    where = await endpoints(provider)
    if where.revocation is None:
        return False
    try:
        async with _client(provider) as client:
            answer = await client.revoke_token(
                where.revocation, token=token, token_type_hint="refresh_token"
            )
        answer.raise_for_status()
    except (OAuthError, httpx.HTTPError) as exc:
        log.warning("oauth2.revoke_failed provider=%s error=%s", provider.key, exc)
        return False
    return True


def address_of(id_token: str | None, *, client_id: str, now: datetime) -> str:
    """The e-mail address an ID token names. Its signature is not checked: it came straight
    from the token endpoint over the connection this client opened, which OpenID Connect
    Core §3.1.3.7 (6) accepts in place of the signature; its audience and expiry are."""
    if not id_token:
        raise ProviderError("the sign-in provider sent no ID token: the scope needs 'openid'")
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise ProviderError("the sign-in provider sent an ID token that cannot be read") from None
    if not isinstance(claims, dict):
        raise ProviderError("the sign-in provider sent an ID token that cannot be read")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if client_id not in audiences:
        raise ProviderError("the ID token was issued to another application")
    expires = claims.get("exp")
    if not isinstance(expires, int | float) or expires < now.timestamp() - 60:
        raise ProviderError("the ID token has expired: please sign in again")
    if claims.get("email_verified") is False:
        raise InvalidInput("the provider has not verified this account's e-mail address")
    # Microsoft puts the address in `email` when asked for that scope, else in
    # `preferred_username` (the sign-in name, which is the mailbox's address in Microsoft 365).
    for name in ("email", "preferred_username"):
        value = claims.get(name)
        if isinstance(value, str) and "@" in value:
            return value.strip()
    raise ProviderError("the ID token names no e-mail address: the scope needs 'email'")
