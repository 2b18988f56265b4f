"""An in-process API client for one user: the real app and routes, no network, no workers."""

from __future__ import annotations

from typing import Any

import httpx

from app.main import create_app
from app.services import accounts
from app.services.context import Context


async def api_client(ctx: Context, email: str, *, create_user: bool = True) -> httpx.AsyncClient:
    """A client authenticated as `email` (created first unless it exists already)."""
    if create_user:
        await accounts.create_user(ctx, email=email, password="pw-123456789")
    token = await accounts.create_token(ctx, email=email)
    app = create_app(ctx.settings, context=ctx)
    app.state.context = ctx  # what the lifespan would set; the workers stay off
    app.state.background_tasks = set()
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://test",
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )


async def only_draft(api: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    listed = await api.get("/api/v1/drafts", params=params)
    assert listed.status_code == 200, listed.text
    (draft,) = listed.json()["items"]
    return dict(draft)
