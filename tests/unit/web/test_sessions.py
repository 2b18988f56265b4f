"""The session cookie's signature and where a sign-in may send the browser next."""

import pytest

from app.web.render import safe_next
from app.web.sessions import Keys, seal, unseal
from tests.conftest import make_settings


def keys(secret: str = "k" * 40) -> Keys:
    return Keys.of(make_settings("sqlite+aiosqlite:///unused.db", secret_key=secret))


def test_a_sealed_cookie_opens_only_with_its_own_key_and_unchanged() -> None:
    cookie = seal(keys(), "token-123")
    assert unseal(keys(), cookie) == "token-123"
    assert unseal(keys("o" * 40), cookie) is None
    assert unseal(keys(), "token-124" + cookie[len("token-123") :]) is None
    assert unseal(keys(), cookie[:-1] + ("0" if cookie[-1] != "0" else "1")) is None
    for forged in (None, "", ".", "token-123", "x" * 500):
        assert unseal(keys(), forged) is None


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("/threads?state=quiet", "/threads?state=quiet"),
        ("/", "/"),
        (None, "/"),
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_after_sign_in_only_local_paths(target: str | None, where: str) -> None:
    assert safe_next(target) == where
