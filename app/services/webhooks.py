"""Webhook subscriptions: subscribe (the secret is shown once), rotate, test, inspect and replay
deliveries — and the dispatcher the workers run."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from app.domain.events import EventType
from app.errors import Conflict, InvalidInput, NotFound
from app.services.context import Context
from app.services.views import iso
from app.storage import webhooks as store
from app.storage.engine import reading
from app.storage.webhooks import Attempt, Delivery, NewDelivery, NewSubscription, Subscription
from app.webhooks.deliver import TEST_EVENT, WEBHOOK_DISABLED, Dispatcher, Sender
from app.webhooks.signing import new_secret
from app.webhooks.transport import PinnedTransport
from app.webhooks.urlguard import UrlGuard, UrlRefused

MAX_DESCRIPTION = 500
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
DeliveryStatus = Literal["pending", "succeeded", "dead"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


def known_event_types() -> list[str]:
    return sorted({e.value for e in EventType} | {WEBHOOK_DISABLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookView:
    """A subscription as its owner sees it: never a secret."""

    id: int
    url: str
    description: str
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    failing_since: str | None
    previous_secret_expires_at: str | None
    created_at: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryView:
    id: int
    webhook_id: int
    message_id: str
    event_id: int | None
    event_type: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str | None
    completed_at: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptView:
    attempted_at: str | None
    status_code: int | None
    latency_ms: int
    response_start: str
    error: str | None
    outcome: str


def public_view(row: Subscription) -> WebhookView:
    return WebhookView(
        id=row.id,
        url=row.url,
        description=row.description,
        event_types=row.event_types,
        enabled=row.enabled,
        disabled_reason=row.disabled_reason or None,
        failing_since=iso(row.failing_since),
        previous_secret_expires_at=iso(
            row.previous_secret_expires_at if row.previous_secret_enc else None
        ),
        created_at=iso(row.created_at),
    )


def delivery_view(row: Delivery) -> DeliveryView:
    return DeliveryView(
        id=row.id,
        webhook_id=row.subscription_id,
        message_id=row.message_id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=iso(row.next_attempt_at),
        last_attempt_at=iso(row.last_attempt_at),
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=iso(row.created_at),
        completed_at=iso(row.completed_at),
    )


def attempt_view(row: Attempt) -> AttemptView:
    return AttemptView(
        attempted_at=iso(row.attempted_at),
        status_code=row.status_code,
        latency_ms=row.latency_ms,
        response_start=row.response_start,
        error=row.error,
        outcome=row.verdict,
    )


def url_guard(ctx: Context) -> UrlGuard:
    return UrlGuard(allow_private=ctx.settings.webhook_allow_private)


async def _check_url(ctx: Context, url: str) -> str:
    try:
        await url_guard(ctx).check_url(url.strip())
    except UrlRefused as exc:
        raise InvalidInput(f"webhook URL refused: {exc}") from None
    return url.strip()


def _check_event_types(event_types: list[str] | None) -> list[str] | None:
    if event_types is None:
        return None
    known = known_event_types()
    unknown = [t for t in event_types if t not in known]
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0]!r}: use null for every type, or some of "
            + ", ".join(known)
        )
    if not event_types:
        raise InvalidInput("event_types is empty: use null for every type, or list some")
    return sorted(set(event_types))


async def create_webhook(
    ctx: Context,
    *,
    user_id: int,
    url: str,
    event_types: list[str] | None,
    description: str = "",
) -> tuple[int, str]:
    """Subscribe `url`. Returns the id and the secret — the only time the secret is shown."""
    types = _check_event_types(event_types)
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION} characters")
    checked = await _check_url(ctx, url)
    secret = new_secret()
    async with ctx.engine.begin() as conn:
        webhook_id = await store.create_subscription(
            conn,
            NewSubscription(
                user_id=user_id,
                url=checked,
                description=description.strip(),
                event_types=types,
                secret_enc=ctx.box.encrypt(secret),
            ),
            ctx.clock(),
        )
    return webhook_id, secret


async def list_webhooks(ctx: Context, *, user_id: int) -> list[Subscription]:
    async with reading(ctx.engine) as conn:
        return await store.list_subscriptions(conn, user_id)


async def get_webhook(ctx: Context, *, user_id: int, webhook_id: int) -> Subscription:
    async with reading(ctx.engine) as conn:
        row = await store.get_subscription(conn, webhook_id, user_id=user_id)
    if row is None:
        raise NotFound(f"no webhook {webhook_id}")
    return row


async def delete_webhook(ctx: Context, *, user_id: int, webhook_id: int) -> None:
    """Unsubscribe; its deliveries and their attempt log go with it."""
    async with ctx.engine.begin() as conn:
        deleted = await store.delete_subscription(conn, webhook_id, user_id=user_id)
    if not deleted:
        raise NotFound(f"no webhook {webhook_id}")


async def enable_webhook(ctx: Context, *, user_id: int, webhook_id: int) -> Subscription:
    """Switch a disabled endpoint back on (its URL is checked again); events from now on are
    delivered, earlier dead-lettered ones can be retried by hand."""
    row = await get_webhook(ctx, user_id=user_id, webhook_id=webhook_id)
    await _check_url(ctx, row.url)  # resolves the name: not inside the transaction
    async with ctx.engine.begin() as conn:
        updated = await store.enable_subscription(conn, webhook_id, ctx.clock(), user_id=user_id)
    if updated is None:  # deleted meanwhile
        raise NotFound(f"no webhook {webhook_id}")
    return updated


async def rotate_secret(
    ctx: Context, *, user_id: int, webhook_id: int, overlap: timedelta = DEFAULT_OVERLAP
) -> tuple[str, datetime | None]:
    """A new secret, shown once. Until `overlap` has passed, every request is signed with both
    the new and the old secret, so the consumer can switch without missing a message."""
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise InvalidInput(f"the overlap is 0 to {MAX_OVERLAP.days} days")
    secret = new_secret()
    now = ctx.clock()
    expires = now + overlap if overlap else None
    async with ctx.engine.begin() as conn:
        rotated = await store.rotate_secret(
            conn,
            webhook_id,
            user_id=user_id,
            secret_enc=ctx.box.encrypt(secret),
            previous_expires_at=expires,
            now=now,
        )
    if not rotated:
        raise NotFound(f"no webhook {webhook_id}")
    return secret, expires


async def send_test(ctx: Context, *, user_id: int, webhook_id: int) -> Delivery:
    """Queue a `webhook.test` message to this endpoint alone, whatever its event types."""
    now = ctx.clock()
    async with ctx.engine.begin() as conn:
        if await store.get_subscription(conn, webhook_id, user_id=user_id, lock=True) is None:
            raise NotFound(f"no webhook {webhook_id}")
        return await store.add_delivery(
            conn,
            NewDelivery(
                subscription_id=webhook_id,
                event_id=None,
                message_id=f"test_{secrets.token_hex(12)}",
                event_type=TEST_EVENT,
                payload={
                    "schema_version": 1,
                    "webhook": {"id": webhook_id},
                    "message": "A test event from Radio Silence: your endpoint is reachable.",
                },
                created_at=now,
            ),
        )


async def list_deliveries(
    ctx: Context,
    *,
    user_id: int,
    webhook_id: int,
    status: str | None = None,
    before: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise InvalidInput(f"status is one of {', '.join(DELIVERY_STATUSES)}")
    async with reading(ctx.engine) as conn:
        if await store.get_subscription(conn, webhook_id, user_id=user_id) is None:
            raise NotFound(f"no webhook {webhook_id}")
        return await store.list_deliveries(
            conn, webhook_id, status=status, before_id=before, limit=limit
        )


async def get_delivery(
    ctx: Context, *, user_id: int, delivery_id: int
) -> tuple[Delivery, list[Attempt]]:
    """A delivery and its attempts, oldest first."""
    async with reading(ctx.engine) as conn:
        row = await store.get_delivery(conn, delivery_id, user_id=user_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        return row, await store.list_attempts(conn, delivery_id)


async def retry_delivery(ctx: Context, *, user_id: int, delivery_id: int) -> Delivery:
    """Send again now with a fresh retry schedule: a dead-lettered delivery, or a replay of a
    delivered one (same `webhook-id`, so a consumer that saw it can tell)."""
    async with ctx.engine.begin() as conn:
        endpoint = await store.delivery_endpoint(conn, delivery_id, user_id=user_id)
        if endpoint is None:
            raise NotFound(f"no webhook delivery {delivery_id}")
        if not endpoint.enabled:
            webhook_id = endpoint.webhook_id
            raise Conflict(
                f"webhook {webhook_id} is disabled ({endpoint.disabled_reason}): enable it "
                f"with POST /api/v1/webhooks/{webhook_id}/enable first"
            )
        return await store.requeue(conn, delivery_id, ctx.clock())


def make_dispatcher(ctx: Context, *, owner: str) -> Dispatcher:
    """The production dispatcher: real DNS, the SSRF guard, connections pinned to checked
    addresses. Close it with `await dispatcher.aclose()`."""
    transport = PinnedTransport(url_guard(ctx))
    return Dispatcher(
        engine=ctx.engine,
        box=ctx.box,
        sender=Sender(transport),
        owner=owner,
        clock=ctx.clock,
        lease=timedelta(seconds=ctx.settings.webhook_lease_seconds),
    )
