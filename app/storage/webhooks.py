"""Webhook subscriptions, their deliveries (the outbox fanned out) and the attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, Row, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import events, webhook_attempts, webhook_deliveries, webhook_subscriptions

subs, deliveries, attempts = webhook_subscriptions, webhook_deliveries, webhook_attempts
# Set on the connection when a transaction queued deliveries, so a dispatcher in this process
# can be woken as it commits (see app.webhooks.deliver.wake_on_commit).
QUEUED_MARK = "radiosilence_webhooks_queued"


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """A row of webhook_subscriptions (secrets sealed: never shown as they are)."""

    id: int
    user_id: int
    url: str
    description: str
    event_types: list[str] | None  # None: every type
    secret_enc: bytes
    previous_secret_enc: bytes | None
    previous_secret_expires_at: datetime | None
    enabled: bool
    disabled_reason: str
    failing_since: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NewSubscription:
    user_id: int
    url: str
    description: str
    event_types: list[str] | None
    secret_enc: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A row of webhook_deliveries: one message to one subscription."""

    id: int
    subscription_id: int
    event_id: int | None  # None: a test ping
    message_id: str
    event_type: str
    # A test ping's data (JSON of an open shape); an event's data is read from `events`.
    payload: dict[str, Any] | None
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewDelivery:
    """A delivery to queue, due at once (`created_at`)."""

    subscription_id: int
    event_id: int | None
    message_id: str
    event_type: str
    payload: dict[str, Any] | None  # JSON of an open shape: the message's data
    created_at: datetime


class QueuedEvent(TypedDict):
    """An event just written, to fan out. A TypedDict, not a dataclass: the outbox builds these
    inline by the thousand per batch."""

    event_id: int
    user_id: int
    type: str
    created_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """What sending one claimed delivery needs: its message, endpoint and secrets."""

    id: int
    subscription_id: int
    message_id: str
    event_type: str
    attempts: int
    created_at: datetime
    payload: dict[str, Any] | None  # a test ping's data (JSON)
    event_payload: dict[str, Any] | None  # the event's data (JSON), when it is an event's
    user_id: int
    url: str
    secret_enc: bytes
    previous_secret_enc: bytes | None
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAttempt:
    delivery_id: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_start: str
    error: str | None
    verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """A row of webhook_attempts."""

    id: int
    delivery_id: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    response_start: str
    error: str | None
    verdict: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """An attempt's consequence for its delivery."""

    id: int
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEndpoint:
    """The state of the endpoint a delivery goes to."""

    delivery_id: int
    webhook_id: int
    enabled: bool
    disabled_reason: str


def message_id_for_event(event_id: int) -> str:
    """The `webhook-id` of an event: the same on every retry and for every subscription."""
    return f"evt_{event_id}"


def _subscription(row: Row[Any]) -> Subscription:
    return Subscription(**row._mapping)  # the table's columns, exactly


def _delivery(row: Row[Any]) -> Delivery:
    return Delivery(**row._mapping)  # the table's columns, exactly


# --- subscriptions ---------------------------------------------------------------------------


async def create_subscription(conn: AsyncConnection, new: NewSubscription, now: datetime) -> int:
    result = await conn.execute(
        insert(subs)
        .values(
            user_id=new.user_id,
            url=new.url,
            description=new.description,
            event_types=new.event_types,
            secret_enc=new.secret_enc,
            enabled=True,
            disabled_reason="",
            created_at=now,
            updated_at=now,
        )
        .returning(subs.c.id)
    )
    return int(result.scalar_one())


async def get_subscription(
    conn: AsyncConnection, subscription_id: int, *, user_id: int | None = None, lock: bool = False
) -> Subscription | None:
    """With `lock`, the row is held (FOR SHARE on PostgreSQL; SQLite's writers are serialized
    anyway) until the transaction ends: it cannot be deleted or changed under the caller."""
    query = select(subs).where(subs.c.id == subscription_id)
    if user_id is not None:
        query = query.where(subs.c.user_id == user_id)
    if lock:
        query = query.with_for_update(read=True)
    row = (await conn.execute(query)).first()
    return _subscription(row) if row else None


async def list_subscriptions(conn: AsyncConnection, user_id: int) -> list[Subscription]:
    query = select(subs).where(subs.c.user_id == user_id).order_by(subs.c.id)
    return [_subscription(r) for r in await conn.execute(query)]


async def _update_subscription(
    conn: AsyncConnection,
    subscription_id: int,
    values: dict[str, object],  # column -> value, built by the functions below only
    now: datetime,
    *,
    user_id: int | None,
) -> Subscription | None:
    """The updated row, or None when there is no such subscription (of `user_id`)."""
    query = update(subs).where(subs.c.id == subscription_id)
    if user_id is not None:
        query = query.where(subs.c.user_id == user_id)
    row = (await conn.execute(query.values(**values, updated_at=now).returning(*subs.c))).first()
    return _subscription(row) if row else None


async def enable_subscription(
    conn: AsyncConnection, subscription_id: int, now: datetime, *, user_id: int | None = None
) -> Subscription | None:
    """Switched on again, with a clean failure record; None when there is no such one."""
    values = {"enabled": True, "disabled_reason": "", "failing_since": None}
    return await _update_subscription(conn, subscription_id, values, now, user_id=user_id)


async def set_url(
    conn: AsyncConnection, subscription_id: int, url: str, now: datetime
) -> Subscription | None:
    """Point a subscription elsewhere (the caller has checked the URL)."""
    return await _update_subscription(conn, subscription_id, {"url": url}, now, user_id=None)


async def rotate_secret(
    conn: AsyncConnection,
    subscription_id: int,
    *,
    user_id: int,
    secret_enc: bytes,
    previous_expires_at: datetime | None,
    now: datetime,
) -> bool:
    """Install a new secret; the current one stays as the previous secret until
    `previous_expires_at` (None: dropped at once). One statement: the secret moved aside is
    the one this very UPDATE replaces. False when the user has no such subscription."""
    row = await _update_subscription(
        conn,
        subscription_id,
        {
            "secret_enc": secret_enc,
            "previous_secret_enc": subs.c.secret_enc if previous_expires_at else None,
            "previous_secret_expires_at": previous_expires_at,
        },
        now,
        user_id=user_id,
    )
    return row is not None


async def delete_subscription(
    conn: AsyncConnection, subscription_id: int, *, user_id: int | None = None
) -> bool:
    """False when there is no such subscription (of `user_id`)."""
    query = delete(subs).where(subs.c.id == subscription_id)
    if user_id is not None:
        query = query.where(subs.c.user_id == user_id)
    result = await conn.execute(query.returning(subs.c.id))
    return result.first() is not None


async def disable_subscription(
    conn: AsyncConnection, subscription_id: int, reason: str, now: datetime
) -> Subscription | None:
    """Switch an enabled endpoint off and dead-letter what it had pending; returns the row if
    this call changed it (so the owner is told once)."""
    result = await conn.execute(
        update(subs)
        .where(subs.c.id == subscription_id, subs.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated_at=now)
        .returning(*subs.c)
    )
    row = result.first()
    if row is None:
        return None
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.subscription_id == subscription_id, deliveries.c.status == "pending")
        .values(
            status="dead",
            last_error=f"endpoint disabled: {reason}",
            next_attempt_at=None,
            lease_owner=None,
            lease_expires_at=None,
            completed_at=now,
        )
    )
    return _subscription(row)


async def mark_failing(
    conn: AsyncConnection, subscription_ids: Sequence[int], now: datetime
) -> None:
    if subscription_ids:
        await conn.execute(
            update(subs)
            .where(subs.c.id.in_(subscription_ids), subs.c.failing_since.is_(None))
            .values(failing_since=now)
        )


async def failing_since_before(
    conn: AsyncConnection, subscription_ids: Sequence[int], cutoff: datetime
) -> list[int]:
    if not subscription_ids:
        return []
    query = select(subs.c.id).where(
        subs.c.id.in_(subscription_ids),
        subs.c.enabled.is_(True),
        subs.c.failing_since <= cutoff,
    )
    return [int(i) for i in (await conn.execute(query)).scalars()]


async def mark_recovered(
    conn: AsyncConnection, subscription_ids: Sequence[int], now: datetime
) -> list[int]:
    """Clear the failure streak of endpoints that answered 2xx again, and make what they have
    waiting in backoff due now: a consumer back from an outage gets its backlog at once."""
    if not subscription_ids:
        return []
    result = await conn.execute(
        update(subs)
        .where(subs.c.id.in_(subscription_ids), subs.c.failing_since.is_not(None))
        .values(failing_since=None)
        .returning(subs.c.id)
    )
    recovered = [int(i) for i in result.scalars()]
    if recovered:
        await conn.execute(
            update(deliveries)
            .where(
                deliveries.c.subscription_id.in_(recovered),
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at > now,
            )
            .values(next_attempt_at=now)
        )
    return recovered


# --- the outbox, fanned out -------------------------------------------------------------------


async def fan_out(conn: AsyncConnection, queued: Sequence[QueuedEvent]) -> int:
    """Queue one delivery of each event per enabled subscription of its user that wants its
    type. Runs in the transaction that wrote the events: all commit, or none. One SELECT of
    the subscriptions of every user involved and one INSERT of every delivery, however many
    events."""
    if not queued:
        return 0
    user_ids = sorted({int(e["user_id"]) for e in queued})
    query = (
        select(subs.c.id, subs.c.user_id, subs.c.event_types)
        .where(subs.c.user_id.in_(user_ids), subs.c.enabled.is_(True))
        .order_by(subs.c.id)
    )
    by_user: dict[int, list[tuple[int, list[str] | None]]] = {}
    for sid, uid, types in (await conn.execute(query)).all():
        by_user.setdefault(int(uid), []).append((int(sid), types))
    rows = [
        {
            "subscription_id": sid,
            "event_id": e["event_id"],
            "message_id": message_id_for_event(e["event_id"]),
            "event_type": e["type"],
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": e["created_at"],
            "created_at": e["created_at"],
        }
        for e in queued
        for sid, types in by_user.get(int(e["user_id"]), ())
        if types is None or e["type"] in types
    ]
    if not rows:
        return 0
    await conn.execute(insert(deliveries), rows)
    conn.info[QUEUED_MARK] = True
    return len(rows)


async def add_delivery(conn: AsyncConnection, new: NewDelivery) -> Delivery:
    """Queue one delivery, due at once; returns its row."""
    result = await conn.execute(
        insert(deliveries)
        .values(
            subscription_id=new.subscription_id,
            event_id=new.event_id,
            message_id=new.message_id,
            event_type=new.event_type,
            payload=new.payload,
            status="pending",
            attempts=0,
            next_attempt_at=new.created_at,
            created_at=new.created_at,
        )
        .returning(*deliveries.c)
    )
    conn.info[QUEUED_MARK] = True
    return _delivery(result.one())


# --- the dispatcher's side --------------------------------------------------------------------


def _lease_free(now: datetime) -> ColumnElement[bool]:
    return or_(deliveries.c.lease_expires_at.is_(None), deliveries.c.lease_expires_at < now)


async def has_due(conn: AsyncConnection, now: datetime) -> bool:
    query = (
        select(deliveries.c.id)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= now,
            _lease_free(now),
        )
        .limit(1)
    )
    return (await conn.execute(query)).first() is not None


async def claim_due(
    conn: AsyncConnection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[int]:
    """Lease up to `limit` due deliveries to `owner` in one statement.

    The lease condition is repeated outside the subquery, so the UPDATE itself decides who wins:
    on SQLite (where SKIP LOCKED is dropped and writers queue) and on PostgreSQL, where a claimer
    that waited on a row re-checks it and skips it once another holds the lease.
    """
    due = (
        select(deliveries.c.id)
        .where(
            deliveries.c.status == "pending",
            deliveries.c.next_attempt_at <= now,
            _lease_free(now),
        )
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id.in_(due), deliveries.c.status == "pending", _lease_free(now))
        .values(lease_owner=owner, lease_expires_at=now + lease)
        .returning(deliveries.c.id)
    )
    return sorted(int(i) for i in result.scalars())


async def jobs(conn: AsyncConnection, delivery_ids: Sequence[int]) -> list[Job]:
    """What sending each claimed delivery needs: its message, endpoint and secrets."""
    if not delivery_ids:
        return []
    query = (
        select(
            deliveries.c.id,
            deliveries.c.subscription_id,
            deliveries.c.message_id,
            deliveries.c.event_type,
            deliveries.c.attempts,
            deliveries.c.created_at,
            deliveries.c.payload,
            events.c.payload.label("event_payload"),
            subs.c.user_id,
            subs.c.url,
            subs.c.secret_enc,
            subs.c.previous_secret_enc,
            subs.c.previous_secret_expires_at,
        )
        .select_from(
            deliveries.join(subs, subs.c.id == deliveries.c.subscription_id).outerjoin(
                events, events.c.id == deliveries.c.event_id
            )
        )
        .where(deliveries.c.id.in_(delivery_ids))
        .order_by(deliveries.c.id)
    )
    return [Job(**r._mapping) for r in await conn.execute(query)]  # the columns selected above


async def add_attempts(conn: AsyncConnection, rows: Sequence[NewAttempt]) -> None:
    if rows:
        await conn.execute(
            insert(attempts),
            [
                {
                    "delivery_id": a.delivery_id,
                    "attempted_at": a.attempted_at,
                    "status_code": a.status_code,
                    "latency_ms": a.latency_ms,
                    "response_start": a.response_start,
                    "error": a.error,
                    "verdict": a.verdict,
                }
                for a in rows
            ],
        )


async def settle(conn: AsyncConnection, owner: str, rows: Sequence[Settlement]) -> None:
    """Record each attempt's consequence and release the lease — only where `owner` still holds
    it: if the lease ran out and another worker took the delivery, that worker's word counts."""
    if not rows:
        return
    await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == bindparam("b_id"), deliveries.c.lease_owner == owner)
        .values(
            status=bindparam("b_status"),
            attempts=bindparam("b_attempts"),
            next_attempt_at=bindparam("b_next_attempt_at"),
            last_attempt_at=bindparam("b_last_attempt_at"),
            last_status_code=bindparam("b_last_status_code"),
            last_error=bindparam("b_last_error"),
            completed_at=bindparam("b_completed_at"),
            lease_owner=None,
            lease_expires_at=None,
        ),
        [
            {
                "b_id": s.id,
                "b_status": s.status,
                "b_attempts": s.attempts,
                "b_next_attempt_at": s.next_attempt_at,
                "b_last_attempt_at": s.last_attempt_at,
                "b_last_status_code": s.last_status_code,
                "b_last_error": s.last_error,
                "b_completed_at": s.completed_at,
            }
            for s in rows
        ],
    )


async def release(conn: AsyncConnection, owner: str, delivery_ids: Sequence[int]) -> None:
    """Give back claimed deliveries that were not attempted (e.g. on shutdown)."""
    if delivery_ids:
        await conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(delivery_ids), deliveries.c.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )


# --- what the owner reads and does by hand ----------------------------------------------------


async def list_deliveries(
    conn: AsyncConnection,
    subscription_id: int,
    *,
    status: str | None,
    before_id: int | None,
    limit: int,
) -> list[Delivery]:
    """Newest first; page with `before_id`."""
    query = select(deliveries).where(deliveries.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if before_id is not None:
        query = query.where(deliveries.c.id < before_id)
    query = query.order_by(deliveries.c.id.desc()).limit(limit)
    return [_delivery(r) for r in await conn.execute(query)]


async def get_delivery(conn: AsyncConnection, delivery_id: int, *, user_id: int) -> Delivery | None:
    query = (
        select(deliveries)
        .select_from(deliveries.join(subs, subs.c.id == deliveries.c.subscription_id))
        .where(deliveries.c.id == delivery_id, subs.c.user_id == user_id)
    )
    row = (await conn.execute(query)).first()
    return _delivery(row) if row else None


async def list_attempts(conn: AsyncConnection, delivery_id: int) -> list[Attempt]:
    query = select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
    return [Attempt(**r._mapping) for r in await conn.execute(query)]  # the table's columns


async def delivery_endpoint(
    conn: AsyncConnection, delivery_id: int, *, user_id: int
) -> DeliveryEndpoint | None:
    """The state of the endpoint a delivery of the user goes to, or None. The subscription's
    row is held until the transaction ends (FOR SHARE on PostgreSQL; SQLite's writers are
    serialized anyway), so it cannot be disabled or deleted between this check and what the
    caller writes next."""
    query = (
        select(
            deliveries.c.id,
            subs.c.id.label("webhook_id"),
            subs.c.enabled,
            subs.c.disabled_reason,
        )
        .select_from(deliveries.join(subs, subs.c.id == deliveries.c.subscription_id))
        .where(deliveries.c.id == delivery_id, subs.c.user_id == user_id)
        .with_for_update(read=True, of=subs)
    )
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return DeliveryEndpoint(
        delivery_id=int(row.id),
        webhook_id=int(row.webhook_id),
        enabled=bool(row.enabled),
        disabled_reason=row.disabled_reason,
    )


async def requeue(conn: AsyncConnection, delivery_id: int, now: datetime) -> Delivery:
    """Due now, with a fresh retry schedule (dead-lettered or delivered ones too: a replay).
    Returns the delivery's row as updated."""
    result = await conn.execute(
        update(deliveries)
        .where(deliveries.c.id == delivery_id)
        .values(
            status="pending",
            attempts=0,
            next_attempt_at=now,
            completed_at=None,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(*deliveries.c)
    )
    conn.info[QUEUED_MARK] = True
    return _delivery(result.one())


async def count_by_status(conn: AsyncConnection, subscription_id: int) -> dict[str, int]:
    query = (
        select(deliveries.c.status, func.count())
        .where(deliveries.c.subscription_id == subscription_id)
        .group_by(deliveries.c.status)
    )
    return {str(s): int(n) for s, n in (await conn.execute(query)).all()}
