"""The sign-in providers as configuration: presets for Google and Microsoft, a generic
OpenID Connect provider, buttons only for what the operator set up; the authorization URL
and the ID token's address. Nothing here contacts a provider (Google and Microsoft have
fixed endpoints; the generic provider's discovery is tested end to end on loopback)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from app.config import Settings, load_settings
from app.errors import ConfigError, InvalidInput
from app.mail import oauth2_client, oauth2_providers
from app.web.headers import csp_with_form_targets

KEY = "k" * 40
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, secret_key=KEY, **values)  # type: ignore[call-arg]


def test_no_provider_without_its_client_id() -> None:
    assert oauth2_providers.configured(settings()) == []
    # A secret alone shows no button either.
    assert oauth2_providers.configured(settings(oauth2_google_client_secret="s")) == []
    with pytest.raises(InvalidInput, match="none is set up"):
        oauth2_providers.find(settings(), "google")


def test_google_preset() -> None:
    (google,) = oauth2_providers.configured(
        settings(oauth2_google_client_id="g-id", oauth2_google_client_secret="g-secret")
    )
    assert (google.key, google.label) == ("google", "Google")
    assert (google.imap_host, google.imap_port, google.imap_security) == (
        "imap.gmail.com",
        993,
        "tls",
    )
    assert "https://mail.google.com/" in google.scope.split()
    assert {"openid", "email"} <= set(google.scope.split())
    assert google.endpoints is not None
    assert google.endpoints.authorize == "https://accounts.google.com/o/oauth2/v2/auth"
    assert google.endpoints.token == "https://oauth2.googleapis.com/token"
    assert google.endpoints.revocation == "https://oauth2.googleapis.com/revoke"
    assert ("access_type", "offline") in google.authorize_params
    assert "g-secret" not in repr(google)


def test_microsoft_preset_follows_the_tenant() -> None:
    (ms,) = oauth2_providers.configured(
        settings(
            oauth2_microsoft_client_id="m-id",
            oauth2_microsoft_client_secret="m-secret",
            oauth2_microsoft_tenant="contoso.onmicrosoft.com",
        )
    )
    assert (ms.key, ms.label, ms.imap_host, ms.imap_port) == (
        "microsoft",
        "Microsoft",
        "outlook.office365.com",
        993,
    )
    assert set(ms.scope.split()) == {
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "https://outlook.office.com/SMTP.Send",
        "offline_access",
        "openid",
        "email",
    }
    assert ms.endpoints is not None
    base = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0"
    assert ms.endpoints.authorize == f"{base}/authorize"
    assert ms.endpoints.token == f"{base}/token"
    assert ms.endpoints.revocation is None  # Microsoft offers no RFC 7009 endpoint


def test_a_bad_tenant_is_refused() -> None:
    with pytest.raises(ValueError, match="oauth2_microsoft_tenant"):
        settings(oauth2_microsoft_tenant="evil.example/../x")


def test_generic_provider_and_the_order_of_buttons(tmp_path: Path) -> None:
    secret_file = tmp_path / "oidc-secret"
    secret_file.write_text("from-a-file\n")
    found = oauth2_providers.configured(
        settings(
            oauth2_google_client_id="g",
            oauth2_google_client_secret="s",
            oauth2_microsoft_client_id="m",
            oauth2_microsoft_client_secret="s",
            oauth2_oidc_discovery_url="https://id.example.com/.well-known/openid-configuration",
            oauth2_oidc_client_id="o",
            oauth2_oidc_client_secret_file=secret_file,
            oauth2_oidc_name="Example SSO",
        )
    )
    assert [p.key for p in found] == ["google", "microsoft", "oidc"]
    oidc = found[2]
    assert oidc.label == "Example SSO"
    assert oidc.client_secret == "from-a-file"
    assert oidc.imap_host == "id.example.com"  # unless RADIOSILENCE_OAUTH2_OIDC_IMAP_HOST
    assert oidc.endpoints is None and oidc.discovery_url is not None


def test_a_client_id_without_its_secret_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RADIOSILENCE_OAUTH2_MICROSOFT_CLIENT_SECRET"):
        load_settings(_env_file=None, secret_key=KEY, oauth2_microsoft_client_id="m")
    gone = settings(oauth2_google_client_id="g", oauth2_google_client_secret_file=tmp_path / "x")
    with pytest.raises(ConfigError, match="cannot read RADIOSILENCE_OAUTH2_GOOGLE_CLIENT_SECRET"):
        oauth2_providers.configured(gone)


async def test_the_authorization_url_carries_state_and_a_pkce_challenge() -> None:
    google = oauth2_providers.google("g-id", "g-secret")
    verifier = "v" * 64
    url = await oauth2_client.authorization_url(
        google,
        redirect_uri="https://rs.example.com/oauth2/callback",
        state="st",
        code_verifier=verifier,
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == google.endpoints.authorize  # type: ignore[union-attr]
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query == {
        "response_type": "code",
        "client_id": "g-id",
        "redirect_uri": "https://rs.example.com/oauth2/callback",
        "scope": oauth2_providers.GOOGLE_SCOPE,
        "state": "st",
        "code_challenge": challenge.decode(),
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }
    assert "g-secret" not in url


def id_token(**claims: object) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def test_the_address_comes_from_the_id_token() -> None:
    exp = NOW.timestamp() + 600
    token = id_token(aud="app", exp=exp, email="Rep@Seller.example", email_verified=True)
    assert oauth2_client.address_of(token, client_id="app", now=NOW) == "Rep@Seller.example"
    # Microsoft without the email claim: the sign-in name is the mailbox's address.
    token = id_token(aud=["app"], exp=exp, preferred_username="rep@contoso.com")
    assert oauth2_client.address_of(token, client_id="app", now=NOW) == "rep@contoso.com"


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"aud": "another-app", "email": "a@b.example"}, "another application"),
        ({"aud": "app", "email": "a@b.example", "exp": 1}, "expired"),
        ({"aud": "app", "email": "a@b.example", "email_verified": False}, "not verified"),
        ({"aud": "app", "sub": "123"}, "no e-mail address"),
    ],
)
def test_an_unusable_id_token_is_refused(claims: dict[str, object], words: str) -> None:
    claims.setdefault("exp", NOW.timestamp() + 600)
    with pytest.raises((oauth2_client.ProviderError, InvalidInput), match=words):
        oauth2_client.address_of(id_token(**claims), client_id="app", now=NOW)
    with pytest.raises(oauth2_client.ProviderError, match="cannot be read"):
        oauth2_client.address_of("not-a-jwt", client_id="app", now=NOW)


def test_pages_with_sign_in_buttons_may_send_forms_on_to_the_provider() -> None:
    policy = csp_with_form_targets(["https://accounts.google.com"])
    assert "form-action 'self' https://accounts.google.com;" in policy
    assert "script-src 'self'" in policy
