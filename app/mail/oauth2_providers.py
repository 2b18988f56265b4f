"""Who a rep can sign in with: Google, Microsoft and one OpenID Connect provider, each shown
only when the operator gave it a client id. Pure configuration: nothing here talks to them.

Google and Microsoft publish fixed endpoints, written down here; a generic provider's are
read from its discovery document (`oauth2_client.discover`) the first time they are needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from app.config import Settings
from app.errors import ConfigError, InvalidInput
from app.mail.imap import Security


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    authorize: str
    token: str
    revocation: str | None = None  # RFC 7009; Microsoft has none


@dataclass(frozen=True, kw_only=True)
class Provider:
    key: str  # google | microsoft | oidc
    label: str  # "Connect with {label}"
    client_id: str
    client_secret: str = field(repr=False)
    scope: str
    imap_host: str
    imap_port: int = 993
    imap_security: Security = "tls"
    endpoints: Endpoints | None = None  # None: read from `discovery_url`
    discovery_url: str | None = None
    # Extra parameters of the authorization request (Google gives a refresh token only with
    # access_type=offline, and again for an account that consented before only with a prompt).
    authorize_params: tuple[tuple[str, str], ...] = ()


GOOGLE_SCOPE = "openid email https://mail.google.com/"
# SMTP.Send too: SMTP delivery of approved drafts logs in with the same grant.
MICROSOFT_SCOPE = (
    "openid email offline_access https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send"
)


def google(client_id: str, client_secret: str) -> Provider:
    return Provider(
        key="google",
        label="Google",
        client_id=client_id,
        client_secret=client_secret,
        scope=GOOGLE_SCOPE,
        imap_host="imap.gmail.com",
        endpoints=Endpoints(
            authorize="https://accounts.google.com/o/oauth2/v2/auth",
            token="https://oauth2.googleapis.com/token",
            revocation="https://oauth2.googleapis.com/revoke",
        ),
        authorize_params=(("access_type", "offline"), ("prompt", "consent")),
    )


def microsoft(client_id: str, client_secret: str, tenant: str) -> Provider:
    base = f"https://login.microsoftonline.com/{tenant}/oauth2/v2.0"
    return Provider(
        key="microsoft",
        label="Microsoft",
        client_id=client_id,
        client_secret=client_secret,
        scope=MICROSOFT_SCOPE,
        imap_host="outlook.office365.com",
        endpoints=Endpoints(authorize=f"{base}/authorize", token=f"{base}/token"),
    )


def oidc(settings: Settings, client_id: str, client_secret: str) -> Provider:
    url = settings.oauth2_oidc_discovery_url
    assert url is not None
    return Provider(
        key="oidc",
        label=settings.oauth2_oidc_name,
        client_id=client_id,
        client_secret=client_secret,
        scope=settings.oauth2_oidc_scope,
        imap_host=settings.oauth2_oidc_imap_host or (urlsplit(url).hostname or ""),
        imap_port=settings.oauth2_oidc_imap_port,
        imap_security=settings.oauth2_oidc_imap_security,
        discovery_url=url,
    )


def _secret(name: str, value: SecretStr | None, path: Path | None) -> str:
    """The client secret from the setting or from its file (a Docker or systemd secret)."""
    if value is not None:
        return value.get_secret_value()
    if path is None:
        raise ConfigError(f"RADIOSILENCE_OAUTH2_{name}_CLIENT_SECRET (or …_FILE) is missing")
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read RADIOSILENCE_OAUTH2_{name}_CLIENT_SECRET_FILE: {exc}"
        ) from None


def configured(settings: Settings) -> list[Provider]:
    """The providers the operator set up, in the order their buttons show."""
    s = settings
    found: list[Provider] = []
    if s.oauth2_google_client_id:
        secret = _secret(
            "GOOGLE", s.oauth2_google_client_secret, s.oauth2_google_client_secret_file
        )
        found.append(google(s.oauth2_google_client_id, secret))
    if s.oauth2_microsoft_client_id:
        secret = _secret(
            "MICROSOFT", s.oauth2_microsoft_client_secret, s.oauth2_microsoft_client_secret_file
        )
        found.append(microsoft(s.oauth2_microsoft_client_id, secret, s.oauth2_microsoft_tenant))
    if s.oauth2_oidc_discovery_url and s.oauth2_oidc_client_id:
        secret = _secret("OIDC", s.oauth2_oidc_client_secret, s.oauth2_oidc_client_secret_file)
        found.append(oidc(s, s.oauth2_oidc_client_id, secret))
    return found


def find(settings: Settings, key: str) -> Provider:
    """The configured provider `key`, else InvalidInput naming the ones there are."""
    providers = configured(settings)
    for provider in providers:
        if provider.key == key:
            return provider
    known = ", ".join(p.key for p in providers) or "none is set up on this server"
    raise InvalidInput(f"unknown sign-in provider {key[:40]!r} (known: {known})")
