"""Standard Webhooks signing (spec v1): secrets, the signed content, headers and body. Pure.

A request carries `webhook-id` (the same on every retry: the consumer's idempotency key),
`webhook-timestamp` (Unix seconds, taken per attempt) and `webhook-signature`: a space-separated
list of `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, one per live secret, so a consumer
keeps verifying while a secret is being rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


class BadSecret(ValueError):
    """A stored or given secret is not `whsec_` + base64 of 24–64 bytes."""


def new_secret(size: int = SECRET_BYTES) -> str:
    if not MIN_SECRET_BYTES <= size <= MAX_SECRET_BYTES:
        raise BadSecret(f"a secret has {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes, not {size}")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(size)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a `whsec_…` secret."""
    if not secret.startswith(SECRET_PREFIX):
        raise BadSecret(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise BadSecret("a webhook secret is base64 after its prefix") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise BadSecret(f"a webhook secret holds {MIN_SECRET_BYTES}–{MAX_SECRET_BYTES} bytes")
    return key


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of `msg_id.timestamp.body`."""
    if "." in msg_id:
        raise ValueError("a webhook id must not contain '.' (it separates the signed parts)")
    content = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """Every live key's signature, space-separated (newest first)."""
    if not keys:
        raise ValueError("at least one key is needed to sign")
    return " ".join(sign(k, msg_id, timestamp, body) for k in keys)


def request_headers(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
        "content-type": "application/json",
    }


def encode_body(event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """`{"type", "timestamp", "data"}`: the same bytes on every attempt of one message."""
    envelope = {"type": event_type, "timestamp": created_at.isoformat(), "data": data}
    return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()
