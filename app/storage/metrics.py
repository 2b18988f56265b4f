"""The stored state an operator graphs: a few indexed counts, no scan of mail or threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from app.storage.tables import drafts, mailboxes, webhook_deliveries

WAITING_DELIVERIES = ("pending", "dead")


@dataclass(frozen=True, kw_only=True)
class StoredCounts:
    mailboxes_by_status: dict[str, int]
    deliveries_waiting: dict[str, int]  # every status of WAITING_DELIVERIES, 0 when none
    oldest_pending_at: datetime | None  # the oldest delivery still pending
    drafts_pending: int


async def stored_counts(conn: AsyncConnection) -> StoredCounts:
    counted = await conn.execute(
        select(mailboxes.c.status, func.count()).group_by(mailboxes.c.status)
    )
    by_status = {str(status): int(n) for status, n in counted.all()}
    counted = await conn.execute(
        select(webhook_deliveries.c.status, func.count())
        .where(webhook_deliveries.c.status.in_(WAITING_DELIVERIES))
        .group_by(webhook_deliveries.c.status)
    )
    waiting = dict.fromkeys(WAITING_DELIVERIES, 0)
    waiting.update({str(status): int(n) for status, n in counted.all()})
    oldest = (
        await conn.execute(
            select(func.min(webhook_deliveries.c.created_at)).where(
                webhook_deliveries.c.status == "pending"
            )
        )
    ).scalar_one()
    pending_drafts = (
        await conn.execute(select(func.count()).where(drafts.c.state == "pending"))
    ).scalar_one()
    return StoredCounts(
        mailboxes_by_status=by_status,
        deliveries_waiting=waiting,
        oldest_pending_at=oldest,
        drafts_pending=int(pending_drafts),
    )
