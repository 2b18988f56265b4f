"""/api/v1/webhooks: subscribe to events over signed HTTP callbacks (Standard Webhooks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, Field

from app.api.deps import MAX_ID, ContextDep, RowId, UserDep
from app.api.schemas import Problem
from app.services import webhooks as service
from app.services.bodies import Strict
from app.services.paging import split_page
from app.services.webhooks import MAX_DESCRIPTION, DeliveryStatus
from app.webhooks.urlguard import MAX_URL_LENGTH

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    404: {"model": Problem},
    409: {"model": Problem},
    422: {"model": Problem},
}


class WebhookCreate(Strict):
    url: str = Field(
        min_length=1, max_length=MAX_URL_LENGTH, examples=["https://crm.example.com/hooks/rs"]
    )
    event_types: list[str] | None = Field(
        None, max_length=50, description="The types to receive; null for every type."
    )
    description: str = Field("", max_length=MAX_DESCRIPTION)


class WebhookSecret(BaseModel):
    id: int
    secret: str = Field(description="`whsec_…`: shown this once; verify signatures with it.")
    previous_secret_expires_at: str | None = None


class WebhookOut(BaseModel):
    id: int
    url: str
    description: str
    event_types: list[str] | None
    enabled: bool
    disabled_reason: str | None
    failing_since: str | None
    previous_secret_expires_at: str | None = Field(
        description="During a secret rotation: until when the old secret also signs."
    )
    created_at: str | None


class WebhookList(BaseModel):
    items: list[WebhookOut]


class RotateSecret(Strict):
    overlap_seconds: int = Field(
        int(service.DEFAULT_OVERLAP.total_seconds()),
        ge=0,
        le=int(service.MAX_OVERLAP.total_seconds()),
        description="How long the old secret keeps signing beside the new one.",
    )


class AttemptOut(BaseModel):
    attempted_at: str | None
    status_code: int | None
    latency_ms: int
    response_start: str
    error: str | None
    outcome: str


class DeliveryOut(BaseModel):
    id: int
    webhook_id: int
    message_id: str = Field(description="The `webhook-id` header: the same on every retry.")
    event_id: int | None
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: str | None
    last_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str | None
    completed_at: str | None


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=WebhookSecret, responses=ERRORS
)
async def create_webhook(body: WebhookCreate, ctx: ContextDep, user: UserDep) -> WebhookSecret:
    """Subscribe a URL. The answer holds the signing secret: it is shown this once.

    Unless the operator allows otherwise, the URL must be https and resolve to public
    addresses only; a refused URL answers 422 saying why."""
    webhook_id, secret = await service.create_webhook(
        ctx,
        user_id=user.id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
    )
    return WebhookSecret(id=webhook_id, secret=secret)


@router.get("", response_model=WebhookList, responses=ERRORS)
async def list_webhooks(ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    rows = await service.list_webhooks(ctx, user_id=user.id)
    return {"items": [service.public_view(r) for r in rows]}


@router.get("/{webhook_id}", response_model=WebhookOut, responses=ERRORS)
async def get_webhook(webhook_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    return service.public_view(
        await service.get_webhook(ctx, user_id=user.id, webhook_id=webhook_id)
    )


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_webhook(webhook_id: RowId, ctx: ContextDep, user: UserDep) -> Response:
    """Unsubscribe; pending deliveries are dropped with it."""
    await service.delete_webhook(ctx, user_id=user.id, webhook_id=webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/enable", response_model=WebhookOut, responses=ERRORS)
async def enable_webhook(webhook_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """Switch a disabled endpoint (410 Gone, or failing for days) back on."""
    return service.public_view(
        await service.enable_webhook(ctx, user_id=user.id, webhook_id=webhook_id)
    )


@router.post("/{webhook_id}/rotate-secret", response_model=WebhookSecret, responses=ERRORS)
async def rotate_secret(
    webhook_id: RowId, ctx: ContextDep, user: UserDep, body: RotateSecret | None = None
) -> WebhookSecret:
    """A new secret, shown once. During the overlap (default 24 h) each request carries both
    signatures, so the consumer can switch to the new secret without missing a message."""
    overlap = timedelta(seconds=(body or RotateSecret()).overlap_seconds)
    secret, expires = await service.rotate_secret(
        ctx, user_id=user.id, webhook_id=webhook_id, overlap=overlap
    )
    return WebhookSecret(
        id=webhook_id,
        secret=secret,
        previous_secret_expires_at=expires.isoformat() if expires else None,
    )


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    responses=ERRORS,
)
async def send_test(webhook_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """Queue a `webhook.test` message to this endpoint; follow it under its deliveries."""
    row = await service.send_test(ctx, user_id=user.id, webhook_id=webhook_id)
    return service.delivery_view(row)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage, responses=ERRORS)
async def list_deliveries(
    webhook_id: RowId,
    ctx: ContextDep,
    user: UserDep,
    delivery_status: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: int | None = Query(
        None, ge=1, le=MAX_ID, description="`next_cursor` of the previous page"
    ),
) -> dict[str, Any]:
    """Newest first. `status=dead` lists the dead-lettered ones, to retry by hand."""
    rows = await service.list_deliveries(
        ctx,
        user_id=user.id,
        webhook_id=webhook_id,
        status=delivery_status,
        before=cursor,
        limit=limit + 1,
    )
    page, more = split_page(rows, limit)
    next_cursor = str(page[-1]["id"]) if more else None
    return {"items": [service.delivery_view(r) for r in page], "next_cursor": next_cursor}


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail, responses=ERRORS)
async def get_delivery(delivery_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """One delivery with every attempt: status code, latency, the start of the answer."""
    row, attempts = await service.get_delivery(ctx, user_id=user.id, delivery_id=delivery_id)
    return {
        **service.delivery_view(row),
        "attempt_log": [service.attempt_view(a) for a in attempts],
    }


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryOut,
    responses=ERRORS,
)
async def retry_delivery(delivery_id: RowId, ctx: ContextDep, user: UserDep) -> dict[str, Any]:
    """Send again now with a fresh retry schedule — a dead-lettered delivery, or a replay."""
    row = await service.retry_delivery(ctx, user_id=user.id, delivery_id=delivery_id)
    return service.delivery_view(row)
