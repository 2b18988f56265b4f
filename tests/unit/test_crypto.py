import pytest

from app.crypto import SecretBox, hash_api_token, hash_password, new_api_token, verify_password
from app.errors import ConfigError


def test_secret_box_round_trip_and_wrong_key() -> None:
    box = SecretBox("a" * 40)
    sealed = box.encrypt("app-password-123")
    assert b"app-password-123" not in sealed
    assert box.decrypt(sealed) == "app-password-123"
    with pytest.raises(ConfigError, match="SECRET_KEY changed"):
        SecretBox("b" * 40).decrypt(sealed)


def test_tokens_are_random_and_hashed() -> None:
    a, b = new_api_token(), new_api_token()
    assert a != b and a.startswith("rs_") and len(a) > 40
    assert hash_api_token(a) == hash_api_token(a) != hash_api_token(b)


def test_passwords_hash_with_argon2() -> None:
    h = hash_password("hunter2-long")
    assert h.startswith("$argon2")
    assert verify_password(h, "hunter2-long")
    assert not verify_password(h, "wrong")
