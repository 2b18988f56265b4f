"""Webhook subscriptions, their deliveries (the outbox fanned out) and the attempt log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import events, webhook_attempts, webhook_deliveries, webhook_subscriptions

subs, deliveries, attempts = webhook_subscriptions, webhook_deliveries, webhook_attempts
# Set on the connection when a transaction queued deliveries, so a dispatcher in this process
# can be woken as it commits (see app.webhooks.deliver.wake_on_commit).
QUEUED_MARK = "radiosilence_webhooks_queued"
_SUBSCRIPTIONS_MEMO = "radiosilence_webhooks_subscriptions"


def message_id_for_event(event_id: int) -> str:
    """The `webhook-id` of an event: the same on every retry and for every subscription."""
    return f"evt_{event_id}"


# --- subscriptions ---------------------------------------------------------------------------


async def create_subscription(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> int:
    _forget_subscriptions(conn)
    result = await conn.execute(
        insert(subs)
        .values(**values, enabled=True, disabled_reason="", created_at=now, updated_at=now)
        .returning(subs.c.id)
    )
    return int(result.scalar_one())


async def get_subscription(
    conn: AsyncConnection, subscription_id: int, *, user_id: int | None = None
) -> dict[str, Any] | None:
    query = select(subs).where(subs.c.id == subscription_id)
    if user_id is not None:
        query = query.where(subs.c.user_id == user_id)
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_subscriptions(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    query = select(subs).where(subs.c.user_id == user_id).order_by(subs.c.id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def update_subscription(
    conn: AsyncConnection, subscription_id: int, values: dict[str, Any], now: datetime
) -> None:
    _forget_subscriptions(conn)
    await conn.execute(
        update(subs).where(subs.c.id == subscription_id).values(**values, updated_at=now)
    )


async def delete_subscription(conn: AsyncConnection, subscription_id: int) -> None:
    _forget_subscriptions(conn)
    await conn.execute(delete(subs).where(subs.c.id == subscription_id))


async def disable_subscription(
    conn: AsyncConnection, subscription_id: int, reason: str, now: datetime
) -> dict[str, Any] | None:
    """Switch an enabled endpoint off and dead-letter what it had pending; returns the row if
    this call changed it (so the owner is told once)."""
    _forget_subscriptions(conn)
    result = await conn.execute(
        update(subs)
        .where(subs.c.id == subscription_id, subs.c.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated_at=now)
        .returning(*subs.c)
    )
    row = result.mappings().first()
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
    return dict(row)


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


async def fan_out(
    conn: AsyncConnection, *, event_id: int, user_id: int, event_type: str, created_at: datetime
) -> int:
    """Queue one delivery of the event per enabled subscription of its user that wants its
    type. Runs in the transaction that wrote the event: both commit, or neither."""
    wanted = [
        sid
        for sid, types in await _enabled_subscriptions(conn, user_id)
        if types is None or event_type in types
    ]
    if not wanted:
        return 0
    message_id = message_id_for_event(event_id)
    await conn.execute(
        insert(deliveries),
        [
            {
                "subscription_id": sid,
                "event_id": event_id,
                "message_id": message_id,
                "event_type": event_type,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": created_at,
                "created_at": created_at,
            }
            for sid in wanted
        ],
    )
    conn.info[QUEUED_MARK] = True
    return len(wanted)


async def _enabled_subscriptions(
    conn: AsyncConnection, user_id: int
) -> list[tuple[int, list[str] | None]]:
    """A user's enabled subscriptions, read once per transaction: a sync that writes many
    events pays for one query, not one per event. Writes to subscriptions drop the memo."""
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    memo: tuple[object, dict[int, list[tuple[int, list[str] | None]]]] | None
    memo = conn.info.get(_SUBSCRIPTIONS_MEMO)
    if memo is None or memo[0] is not transaction:
        memo = (transaction, {})
        conn.info[_SUBSCRIPTIONS_MEMO] = memo
    by_user = memo[1]
    if user_id not in by_user:
        query = select(subs.c.id, subs.c.event_types).where(
            subs.c.user_id == user_id, subs.c.enabled.is_(True)
        )
        by_user[user_id] = [(int(i), t) for i, t in (await conn.execute(query)).all()]
    return by_user[user_id]


def _forget_subscriptions(conn: AsyncConnection) -> None:
    conn.info.pop(_SUBSCRIPTIONS_MEMO, None)


async def add_delivery(conn: AsyncConnection, values: dict[str, Any]) -> int:
    result = await conn.execute(insert(deliveries).values(**values).returning(deliveries.c.id))
    conn.info[QUEUED_MARK] = True
    return int(result.scalar_one())


# --- the dispatcher's side --------------------------------------------------------------------


def _lease_free(now: datetime) -> Any:
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


async def jobs(conn: AsyncConnection, delivery_ids: Sequence[int]) -> list[dict[str, Any]]:
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
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def add_attempts(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        await conn.execute(insert(attempts), list(rows))


async def settle(conn: AsyncConnection, owner: str, rows: Sequence[dict[str, Any]]) -> None:
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
        [{f"b_{k}": v for k, v in row.items()} for row in rows],
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
) -> list[dict[str, Any]]:
    """Newest first; page with `before_id`."""
    query = select(deliveries).where(deliveries.c.subscription_id == subscription_id)
    if status is not None:
        query = query.where(deliveries.c.status == status)
    if before_id is not None:
        query = query.where(deliveries.c.id < before_id)
    query = query.order_by(deliveries.c.id.desc()).limit(limit)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def get_delivery(
    conn: AsyncConnection, delivery_id: int, *, user_id: int
) -> dict[str, Any] | None:
    query = (
        select(deliveries)
        .select_from(deliveries.join(subs, subs.c.id == deliveries.c.subscription_id))
        .where(deliveries.c.id == delivery_id, subs.c.user_id == user_id)
    )
    row = (await conn.execute(query)).mappings().first()
    return dict(row) if row else None


async def list_attempts(conn: AsyncConnection, delivery_id: int) -> list[dict[str, Any]]:
    query = select(attempts).where(attempts.c.delivery_id == delivery_id).order_by(attempts.c.id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def requeue(conn: AsyncConnection, delivery_id: int, now: datetime) -> None:
    """Due now, with a fresh retry schedule (dead-lettered or delivered ones too: a replay)."""
    await conn.execute(
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
    )
    conn.info[QUEUED_MARK] = True


async def count_by_status(conn: AsyncConnection, subscription_id: int) -> dict[str, int]:
    query = (
        select(deliveries.c.status, func.count())
        .where(deliveries.c.subscription_id == subscription_id)
        .group_by(deliveries.c.status)
    )
    return {str(s): int(n) for s, n in (await conn.execute(query)).all()}
