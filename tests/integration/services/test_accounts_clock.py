"""Users, tokens and webhooks are stamped with the context's clock, not the wall clock: a test
that freezes `ctx.clock` sees its time in what storage writes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.services import accounts, webhooks
from app.services.context import Context

pytestmark = pytest.mark.integration
FROZEN = datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)  # far from today: the wall clock cannot match


async def test_storage_stamps_what_it_writes_with_the_callers_clock(ctx: Context) -> None:
    ctx.clock = lambda: FROZEN
    user_id = await accounts.create_user(ctx, email="rep@x.example", password="pw-123456789")
    await accounts.create_token_for(ctx, user_id=user_id, name="ci")
    webhook_id, _secret = await webhooks.create_webhook(
        ctx, user_id=user_id, url="http://127.0.0.1:9/", event_types=None
    )

    (user,) = await accounts.list_users(ctx)
    (token,) = await accounts.list_tokens(ctx, user_id=user_id)
    webhook = await webhooks.get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    assert user.created_at == FROZEN
    assert token.created_at == FROZEN
    assert webhook.created_at == FROZEN and webhook.updated_at == FROZEN
    view = webhooks.public_view(webhook)
    assert view.created_at == FROZEN.isoformat()
