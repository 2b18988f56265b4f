"""A real OAuth2 / OpenID Connect authorization server on loopback for the tests, built from
Authlib's server components on Flask: discovery, authorization (a consent page with an
"Allow" button, PKCE S256 required), token (authorization code and refresh token, with
rotation), RFC 7662 introspection (what Dovecot's oauth2 passdb asks) and RFC 7009
revocation. Access tokens live a few seconds, so expiry is exercised for real.

The account that "signs in" at the consent page is `signed_in_as` (a test sets it).
"""

from __future__ import annotations

import html
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.support.dovecot import DovecotServer, start_dovecot

CLIENT_ID = "radiosilence-test"
CLIENT_SECRET = "client-secret-" + "x" * 20
DOVECOT_ID = "dovecot"  # the resource server: it may introspect tokens
DOVECOT_SECRET = "dovecot-secret-" + "y" * 20
AUTH_METHODS = ("client_secret_basic", "client_secret_post")


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    scope: str = "openid email offline_access imap"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        allowed = set(self.scope.split())
        return " ".join(s for s in scope.split() if s in allowed)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_post", "client_secret_basic")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None = None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


@dataclass
class Token:
    client_id: str
    user: str
    scope: str
    access_token: str
    refresh_token: str | None
    expires_at: float
    revoked: bool = False
    refresh_revoked: bool = False

    def check_client(self, client: Client) -> bool:
        return client.client_id == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked


class OAuthServer:
    """The server's state (clients, codes, tokens) and the Flask app serving it."""

    def __init__(self, *, access_token_seconds: int = 3) -> None:
        self.access_token_seconds = access_token_seconds
        self.signed_in_as = "rep@seller.example"
        self.lock = threading.Lock()
        self.clients: dict[str, Client] = {}
        self.codes: dict[str, Code] = {}
        self.tokens: list[Token] = []
        self.refreshes = 0  # refresh-token grants answered
        self.revocations = 0
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
        self.base_url = ""
        self.app = self._make_app()

    # ------------------------------------------------------------------ what tests use

    def register(self, redirect_uri: str) -> None:
        self.clients[CLIENT_ID] = Client(CLIENT_ID, CLIENT_SECRET, [redirect_uri])
        self.clients[DOVECOT_ID] = Client(DOVECOT_ID, DOVECOT_SECRET, [])

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"

    @property
    def introspection_url(self) -> str:
        # Dovecot authenticates as the resource server with HTTP basic auth from the URL.
        host = self.base_url.split("://", 1)[1]
        return f"http://{DOVECOT_ID}:{DOVECOT_SECRET}@{host}/introspect"

    def active_access_tokens(self) -> list[str]:
        with self.lock:
            return [t.access_token for t in self.tokens if not t.revoked and not t.is_expired()]

    def revoke_grants_of(self, user: str) -> None:
        """What a rep does at the provider ("remove access"): every token of theirs dies."""
        with self.lock:
            for t in self.tokens:
                if t.user == user:
                    t.revoked = t.refresh_revoked = True

    def expire_access_tokens(self) -> None:
        """Every access token expires now (its refresh token still works)."""
        with self.lock:
            for t in self.tokens:
                t.expires_at = min(t.expires_at, time.time() - 1)

    # ------------------------------------------------------------------ Authlib wiring

    def _make_app(self) -> Flask:
        app = Flask(__name__)
        server_state = self

        def query_client(client_id: str) -> Client | None:
            return server_state.clients.get(client_id)

        def save_token(token: dict[str, Any], req: Any) -> None:
            user = req.user if isinstance(req.user, str) else req.credential.user
            with server_state.lock:
                server_state.tokens.append(
                    Token(
                        client_id=req.client.client_id,
                        user=user,
                        scope=token.get("scope", ""),
                        access_token=token["access_token"],
                        refresh_token=token.get("refresh_token"),
                        expires_at=time.time() + token["expires_in"],
                    )
                )

        app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
        app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
            "authorization_code": self.access_token_seconds,
            "refresh_token": self.access_token_seconds,
        }
        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)

        class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

            def save_authorization_code(self, code: str, req: Any) -> None:
                with server_state.lock:
                    server_state.codes[code] = Code(
                        code=code,
                        client_id=req.client.client_id,
                        redirect_uri=req.payload.redirect_uri,
                        scope=req.payload.scope,
                        user=req.user,
                        code_challenge=req.payload.data.get("code_challenge"),
                        code_challenge_method=req.payload.data.get("code_challenge_method"),
                        nonce=req.payload.data.get("nonce"),
                    )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = server_state.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                with server_state.lock:
                    server_state.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> str:
                return authorization_code.user

        class RefreshTokenGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
            INCLUDE_NEW_REFRESH_TOKEN = True  # rotation: the old one dies with its use

            def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
                with server_state.lock:
                    for t in server_state.tokens:
                        if t.refresh_token == refresh_token and not t.refresh_revoked:
                            return t
                return None

            def authenticate_user(self, credential: Token) -> str:
                return credential.user

            def revoke_old_credential(self, credential: Token) -> None:
                with server_state.lock:
                    credential.refresh_revoked = True
                    server_state.refreshes += 1

        class IdToken(OpenIDCode):
            def exists_nonce(self, nonce: str, req: Any) -> bool:
                return False

            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return server_state.key

            def get_client_algorithm(self, client: Client) -> str:
                return "RS256"

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "test-key"}

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {
                    "iss": server_state.base_url,
                    "aud": [client.client_id],
                    "exp": int(time.time()) + 300,
                }

            def generate_user_info(self, user: str, scope: str) -> UserInfo:
                return UserInfo(sub=user, email=user, email_verified=True)

        def find_token(token: str) -> Token | None:
            """The token issued as `token`, access or refresh (introspection, revocation)."""
            with server_state.lock:
                for t in server_state.tokens:
                    if token in (t.access_token, t.refresh_token):
                        return t
            return None

        class Introspection(IntrospectionEndpoint):
            CLIENT_AUTH_METHODS = AUTH_METHODS

            def query_token(self, token: str, token_type_hint: str | None) -> Token | None:
                return find_token(token)

            def introspect_token(self, token: Token) -> dict[str, Any]:
                return {
                    "active": True,
                    "client_id": token.client_id,
                    "token_type": "Bearer",
                    "username": token.user,
                    "scope": token.scope,
                    "sub": token.user,
                    "exp": int(token.expires_at),
                }

            def check_permission(self, token: Token, client: Client, req: Any) -> bool:
                return client.client_id in (DOVECOT_ID, token.client_id)

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = AUTH_METHODS

            def query_token(self, token: str, token_type_hint: str | None) -> Token | None:
                return find_token(token)

            def revoke_token(self, token: Token, req: Any) -> None:
                with server_state.lock:
                    token.revoked = token.refresh_revoked = True
                    server_state.revocations += 1

        server.register_grant(
            AuthorizationCodeGrant, [CodeChallenge(required=True), IdToken(require_nonce=False)]
        )
        server.register_grant(RefreshTokenGrant)
        server.register_endpoint(Introspection)
        server.register_endpoint(Revocation)

        @app.get("/.well-known/openid-configuration")
        def discovery() -> Response:
            base = server_state.base_url
            return jsonify(
                issuer=base,
                authorization_endpoint=f"{base}/authorize",
                token_endpoint=f"{base}/token",
                introspection_endpoint=f"{base}/introspect",
                revocation_endpoint=f"{base}/revoke",
                response_types_supported=["code"],
                code_challenge_methods_supported=["S256"],
            )

        @app.get("/authorize")
        def consent() -> Response | str:
            try:
                server.get_consent_grant(end_user=server_state.signed_in_as)
            except Exception as exc:  # an invalid request: say why, as a provider does
                return Response(f"<p>invalid request: {html.escape(str(exc))}</p>", 400)
            who = html.escape(server_state.signed_in_as)
            target = html.escape("/authorize?" + urlencode(list(request.args.items(multi=True))))
            return (
                "<!doctype html><title>Test identity provider</title>"
                f"<h1>Sign in</h1><p>Signed in as <strong>{who}</strong>.</p>"
                f"<p>Radio Silence asks to read your mail.</p>"
                f'<form method="post" action="{target}">'
                '<button type="submit" name="decision" value="allow">Allow</button> '
                '<button type="submit" name="decision" value="deny">Deny</button></form>'
            )

        @app.post("/authorize")
        def decide() -> Response:
            allowed = request.form.get("decision") == "allow"
            user = server_state.signed_in_as if allowed else None
            grant = server.get_consent_grant(end_user=user)
            answer: Response = server.create_authorization_response(grant=grant, grant_user=user)
            return answer

        @app.post("/token")
        def token() -> Response:
            answer: Response = server.create_token_response()
            return answer

        @app.post("/introspect")
        def introspect() -> Response:
            answer: Response = server.create_endpoint_response("introspection")
            return answer

        @app.post("/revoke")
        def revoke() -> Response:
            answer: Response = server.create_endpoint_response("revocation")
            return answer

        return app


@contextmanager
def running_oauth_server(*, access_token_seconds: int = 3) -> Iterator[OAuthServer]:
    """The server on a free loopback port, in a thread, for the `with` block."""
    state = OAuthServer(access_token_seconds=access_token_seconds)
    http = make_server("127.0.0.1", 0, state.app, threaded=True)
    state.base_url = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        http.shutdown()
        thread.join(timeout=5)


@contextmanager
def dovecot_asking(server: OAuthServer) -> Iterator[DovecotServer]:
    """A Dovecot of its own whose oauth2 passdb asks `server` about every token."""
    root = Path(tempfile.mkdtemp(prefix="radiosilence-idp-"))
    os.chmod(root, 0o755)  # Dovecot's own users must reach the mail homes in it
    dovecot = start_dovecot(root / "dovecot", oauth2_introspection_url=server.introspection_url)
    try:
        yield dovecot
    finally:
        dovecot.close()


def provider_settings(server: OAuthServer, dovecot: DovecotServer) -> dict[str, str]:
    """The RADIOSILENCE_OAUTH2_OIDC_* settings (lower-case names) for this provider."""
    return {
        "oauth2_oidc_discovery_url": server.discovery_url,
        "oauth2_oidc_name": "Test IdP",
        "oauth2_oidc_client_id": CLIENT_ID,
        "oauth2_oidc_client_secret": CLIENT_SECRET,
        "oauth2_oidc_scope": "openid email offline_access imap",
        "oauth2_oidc_imap_host": dovecot.host,
        "oauth2_oidc_imap_port": str(dovecot.port),
        "oauth2_oidc_imap_security": "plain",
    }
