"""Standard Webhooks signing, checked against the reference `standardwebhooks` verifier."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from app.webhooks.signing import (
    BadSecret,
    encode_body,
    new_secret,
    request_headers,
    secret_key,
    sign,
)

BODY = b'{"type":"thread.quiet","timestamp":"2026-11-02T09:00:00+00:00","data":{}}'


def test_new_secrets_are_whsec_base64_of_24_to_64_random_bytes() -> None:
    secrets = {new_secret() for _ in range(20)}
    assert len(secrets) == 20
    for secret in secrets:
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret[6:])) == 32
    assert len(secret_key(new_secret(24))) == 24
    assert len(secret_key(new_secret(64))) == 64
    for size in (23, 65):
        with pytest.raises(BadSecret):
            new_secret(size)


@pytest.mark.parametrize(
    "secret",
    [
        "abc",
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"x" * 16).decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
    ],
)
def test_malformed_secrets_are_refused(secret: str) -> None:
    with pytest.raises(BadSecret):
        secret_key(secret)


def test_our_signature_is_the_reference_signature() -> None:
    secret = new_secret()
    now = int(time.time())
    ours = sign(secret_key(secret), "evt_1", now, BODY)
    theirs = Webhook(secret).sign("evt_1", datetime.fromtimestamp(now, UTC), BODY.decode())
    assert ours == theirs


def test_a_signed_request_verifies_and_returns_the_body() -> None:
    secret = new_secret()
    headers = request_headers([secret_key(secret)], "evt_7", int(time.time()), BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_during_rotation_either_secret_verifies() -> None:
    new, old = new_secret(), new_secret()
    headers = request_headers([secret_key(new), secret_key(old)], "evt_7", int(time.time()), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(new_secret()).verify(BODY, headers)


@pytest.mark.parametrize(
    ("age_seconds", "complaint"),
    [(6 * 60, "too old"), (-6 * 60, "too new")],
)
def test_stale_or_future_timestamps_are_rejected_by_the_verifier(
    age_seconds: int, complaint: str
) -> None:
    secret = new_secret()
    headers = request_headers([secret_key(secret)], "evt_7", int(time.time()) - age_seconds, BODY)
    with pytest.raises(WebhookVerificationError, match=complaint):
        Webhook(secret).verify(BODY, headers)


def test_a_changed_body_or_id_does_not_verify() -> None:
    secret = new_secret()
    headers = request_headers([secret_key(secret)], "evt_7", int(time.time()), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "evt_8"})


def test_ids_with_dots_cannot_be_signed() -> None:
    with pytest.raises(ValueError, match="must not contain"):
        sign(b"k" * 32, "evt.1", 1, BODY)


def test_the_body_is_the_standard_envelope_and_stable() -> None:
    created = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    body = encode_body("thread.quiet", created, {"thread": {"subject": "Müller"}})
    assert json.loads(body) == {
        "type": "thread.quiet",
        "timestamp": "2026-11-02T09:00:00+00:00",
        "data": {"thread": {"subject": "Müller"}},
    }
    assert body == encode_body("thread.quiet", created, {"thread": {"subject": "Müller"}})
