"""Secrets at rest: mailbox credentials encrypted, API tokens and passwords hashed.

The encryption key is derived from RADIOSILENCE_SECRET_KEY with HKDF, so the setting can be
any long random string; Fernet (AES-128-CBC + HMAC-SHA256) authenticates what it decrypts.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import ConfigError

TOKEN_PREFIX = "rs_"
_HKDF_INFO = b"radiosilence credentials v1"
_password_hasher = PasswordHasher()


class SecretBox:
    """Encrypts and decrypts small secrets (IMAP passwords, OAuth tokens, webhook secrets)."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise ConfigError(
                "a stored credential cannot be decrypted: RADIOSILENCE_SECRET_KEY changed since "
                "it was saved; restore the old key or enter the mailbox password again"
            ) from None


def new_api_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is enough and keeps lookups indexable.
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _password_hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _password_hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
