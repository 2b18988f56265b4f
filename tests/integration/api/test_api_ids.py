"""Ids beyond BIGINT in a path or query answer 422 naming the field, never a database 500."""

from __future__ import annotations

import base64

import pytest

from app.services.context import Context
from tests.support.api import api_client

pytestmark = pytest.mark.integration
HUGE = "99999999999999999999"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/api/v1/threads/{HUGE}"),
        ("POST", f"/api/v1/threads/{HUGE}/reopen"),
        ("GET", f"/api/v1/threads?mailbox_id={HUGE}"),
        ("GET", f"/api/v1/mailboxes/{HUGE}"),
        ("GET", f"/api/v1/mailboxes/{HUGE}/rules"),
        ("DELETE", f"/api/v1/webhooks/{HUGE}"),
        ("GET", f"/api/v1/webhooks/deliveries/{HUGE}"),
        ("GET", f"/api/v1/drafts/{HUGE}"),
        ("GET", f"/api/v1/events?after={HUGE}"),
        ("GET", f"/api/v1/webhooks/1/deliveries?cursor={HUGE}"),  # found by the fuzz run
    ],
)
async def test_an_id_too_large_is_a_clear_422(ctx: Context, method: str, path: str) -> None:
    async with await api_client(ctx, "rep@seller.example") as api:
        response = await api.request(method, path)
    assert response.status_code == 422, response.text
    assert "less than or equal to 9223372036854775807" in response.text


@pytest.mark.parametrize("kind", ["t", "d"])
@pytest.mark.parametrize("last_id", [HUGE, "0", "-5"])
async def test_a_forged_cursor_is_a_clear_4xx(ctx: Context, kind: str, last_id: str) -> None:
    """A cursor is opaque, but a client can decode it and put any number inside."""
    forged = base64.urlsafe_b64encode(f"{kind}:{last_id}".encode()).decode().rstrip("=")
    path = "/api/v1/threads" if kind == "t" else "/api/v1/drafts"
    async with await api_client(ctx, "rep@seller.example") as api:
        response = await api.get(path, params={"cursor": forged})
    assert response.status_code in (400, 422), response.text
    assert "invalid cursor" in response.json()["detail"]


async def test_an_unknown_but_valid_id_is_404(ctx: Context) -> None:
    async with await api_client(ctx, "rep@seller.example") as api:
        response = await api.get("/api/v1/threads/9223372036854775807")
    assert response.status_code == 404
