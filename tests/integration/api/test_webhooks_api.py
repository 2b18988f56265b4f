"""/api/v1/webhooks over HTTP (in process), on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from app.services import accounts
from app.services.context import Context
from app.storage import outbox
from app.storage import webhooks as store
from tests.conftest import make_settings
from tests.support.api import api_client

pytestmark = pytest.mark.integration
CONSUMER = "http://127.0.0.1:9/hooks/rs"


@pytest.fixture
async def api(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with await api_client(ctx, "rep@seller.example") as client:
        yield client


@pytest.fixture
async def other(ctx: Context) -> AsyncIterator[httpx.AsyncClient]:
    async with await api_client(ctx, "someone@else.example") as client:
        yield client


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await api.post("/api/v1/webhooks", json={"url": CONSUMER, **body})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_subscribe_list_and_delete(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = await create(api, event_types=["thread.quiet", "thread.replied"], description="CRM")
    assert set(created) == {"id", "secret", "previous_secret_expires_at"}
    assert created["secret"].startswith("whsec_")

    listed = await api.get("/api/v1/webhooks")
    assert listed.status_code == 200
    (item,) = listed.json()["items"]
    assert item["id"] == created["id"] and item["url"] == CONSUMER
    assert item["event_types"] == ["thread.quiet", "thread.replied"]
    assert item["enabled"] is True and item["description"] == "CRM"
    one = await api.get(f"/api/v1/webhooks/{created['id']}")
    assert one.json() == item
    secret_body = created["secret"].removeprefix("whsec_")
    assert secret_body not in listed.text and secret_body not in one.text
    assert "secret" not in item

    assert (await api.delete(f"/api/v1/webhooks/{created['id']}")).status_code == 204
    assert (await api.get("/api/v1/webhooks")).json() == {"items": []}
    assert (await api.get(f"/api/v1/webhooks/{created['id']}")).status_code == 404
    assert secret_body not in caplog.text


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ({"url": CONSUMER, "event_types": ["thread.exploded"]}, "unknown event type"),
        ({"url": CONSUMER, "event_types": []}, "use null for every type"),
        ({"url": "not a url"}, "webhook URL refused"),
        ({"url": CONSUMER, "secret": "whsec_mine"}, "secret"),  # we make the secrets
        ({"event_types": None}, "url"),
    ],
)
async def test_bad_subscriptions_are_a_clear_422(
    api: httpx.AsyncClient, body: dict[str, Any], complaint: str
) -> None:
    answer = await api.post("/api/v1/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    assert complaint in answer.json()["detail"]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
        ("https://localhost:8443/hook", "loopback"),
        ("https://10.0.0.8/hook", "10.0.0.8 is a private address"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[fd00::1]/hook", "private"),
        ("https://2130706433/hook", "not a canonical IP address"),
        ("http://93.184.216.34/hook", "must start with https://"),
        ("https://user:pw@93.184.216.34/hook", "user name or password"),
    ],
)
async def test_private_addresses_are_refused_when_the_guard_is_on(
    database_url: str, url: str, complaint: str
) -> None:
    ctx = Context.create(make_settings(database_url, webhook_allow_private=False))
    try:
        async with await api_client(ctx, "rep@seller.example") as api:
            answer = await api.post("/api/v1/webhooks", json={"url": url})
            assert answer.status_code == 422, answer.text
            detail = answer.json()["detail"]
            assert detail.startswith("webhook URL refused: ")
            assert complaint in detail
            assert answer.json()["code"] == "invalid_input"
            assert (await api.get("/api/v1/webhooks")).json() == {"items": []}
    finally:
        await ctx.close()


async def test_another_users_webhook_is_a_404(
    ctx: Context, api: httpx.AsyncClient, other: httpx.AsyncClient
) -> None:
    created = await create(api)
    webhook_id = created["id"]
    test = await api.post(f"/api/v1/webhooks/{webhook_id}/test")
    delivery_id = test.json()["id"]

    for method, path in [
        ("GET", f"/api/v1/webhooks/{webhook_id}"),
        ("DELETE", f"/api/v1/webhooks/{webhook_id}"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/test"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/enable"),
        ("POST", f"/api/v1/webhooks/{webhook_id}/rotate-secret"),
        ("GET", f"/api/v1/webhooks/{webhook_id}/deliveries"),
        ("GET", f"/api/v1/webhooks/deliveries/{delivery_id}"),
        ("POST", f"/api/v1/webhooks/deliveries/{delivery_id}/retry"),
    ]:
        answer = await other.request(method, path)
        assert answer.status_code == 404, (method, path, answer.text)
    assert (await other.get("/api/v1/webhooks")).json() == {"items": []}
    assert (await api.get(f"/api/v1/webhooks/{webhook_id}")).status_code == 200
    unauthenticated = await api.get("/api/v1/webhooks", headers={"Authorization": ""})
    assert unauthenticated.status_code == 401


async def test_test_pings_deliveries_retry_and_rotation(
    ctx: Context, api: httpx.AsyncClient
) -> None:
    created = await create(api, event_types=["thread.quiet"])
    webhook_id = created["id"]
    user = (await api.get("/api/v1/events")).status_code  # authenticated, empty log
    assert user == 200

    ping = await api.post(f"/api/v1/webhooks/{webhook_id}/test")
    assert ping.status_code == 202
    assert ping.json()["event_type"] == "webhook.test"
    assert ping.json()["status"] == "pending"
    assert ping.json()["message_id"].startswith("test_")

    async with ctx.engine.begin() as conn:
        user_id = (await accounts.authenticate(ctx, api.headers["Authorization"][7:])).id
        for _ in range(3):
            await outbox.enqueue(
                conn, user_id=user_id, type="thread.quiet", payload={"n": 1}, now=ctx.clock()
            )

    page = await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params={"limit": 2})
    assert page.status_code == 200
    first, second = page.json()["items"]
    assert first["id"] > second["id"]  # newest first
    assert first["message_id"] == f"evt_{first['event_id']}"
    rest = await api.get(
        f"/api/v1/webhooks/{webhook_id}/deliveries",
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
    )
    # the ping and three events: two full pages, and the second one says it is the last
    assert page.json()["next_cursor"] is not None
    assert len(rest.json()["items"]) == 2
    assert rest.json()["next_cursor"] is None
    seen = [d["id"] for d in page.json()["items"] + rest.json()["items"]]
    assert seen == sorted(set(seen), reverse=True)
    dead = await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params={"status": "dead"})
    assert dead.json() == {"items": [], "next_cursor": None}
    bad = await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params={"status": "x"})
    assert bad.status_code == 422

    detail = await api.get(f"/api/v1/webhooks/deliveries/{first['id']}")
    assert detail.status_code == 200 and detail.json()["attempt_log"] == []
    retried = await api.post(f"/api/v1/webhooks/deliveries/{first['id']}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "pending"

    rotated = await api.post(
        f"/api/v1/webhooks/{webhook_id}/rotate-secret", json={"overlap_seconds": 3600}
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    shown = (await api.get(f"/api/v1/webhooks/{webhook_id}")).json()
    assert shown["previous_secret_expires_at"] == rotated.json()["previous_secret_expires_at"]
    too_long = await api.post(
        f"/api/v1/webhooks/{webhook_id}/rotate-secret", json={"overlap_seconds": 10**9}
    )
    assert too_long.status_code == 422
    enabled = await api.post(f"/api/v1/webhooks/{webhook_id}/enable")
    assert enabled.status_code == 200 and enabled.json()["enabled"] is True

    schema = (await api.get("/openapi.json")).json()
    assert "/api/v1/webhooks/deliveries/{delivery_id}/retry" in schema["paths"]


async def test_retrying_for_a_disabled_endpoint_says_to_enable_it(
    ctx: Context, api: httpx.AsyncClient
) -> None:
    webhook_id = (await create(api))["id"]
    delivery_id = (await api.post(f"/api/v1/webhooks/{webhook_id}/test")).json()["id"]
    async with ctx.engine.begin() as conn:
        await store.disable_subscription(
            conn, webhook_id, "the endpoint answered 410 Gone", datetime.now(UTC)
        )
    shown = (await api.get(f"/api/v1/webhooks/{webhook_id}")).json()
    assert shown["enabled"] is False and "410" in shown["disabled_reason"]
    dead = await api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", params={"status": "dead"})
    assert [d["id"] for d in dead.json()["items"]] == [delivery_id]

    refused = await api.post(f"/api/v1/webhooks/deliveries/{delivery_id}/retry")
    assert refused.status_code == 409
    assert f"POST /api/v1/webhooks/{webhook_id}/enable" in refused.json()["detail"]
    assert (await api.post(f"/api/v1/webhooks/{webhook_id}/enable")).status_code == 200
    retried = await api.post(f"/api/v1/webhooks/deliveries/{delivery_id}/retry")
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
