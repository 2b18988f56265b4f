"""What /metrics serves: this process's counters (app.metrics), then the stored state read
from the database at scrape time, so every web process reports the same cluster-wide figures."""

from __future__ import annotations

import logging
from datetime import datetime

from prometheus_client import generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from app.metrics import (
    DELIVERIES,
    DRAFTS_PENDING,
    MAILBOX_STATUSES,
    MAILBOXES,
    OLDEST_PENDING,
    STORED,
    STORED_UP,
)
from app.storage.engine import reading
from app.storage.metrics import stored_counts

log = logging.getLogger("app.metrics")  # the name operators' log filters already know


async def read_stored(engine: AsyncEngine, now: datetime) -> None:
    """Refresh the stored-state gauges."""
    try:
        async with reading(engine) as conn:
            counts = await stored_counts(conn)
    except Exception:  # the process metrics are still worth serving
        log.warning("metrics.database_unavailable", exc_info=True)
        STORED_UP.set(0)
        return
    for status in {*MAILBOX_STATUSES, *counts.mailboxes_by_status}:
        MAILBOXES.labels(status=status).set(counts.mailboxes_by_status.get(status, 0))
    for status, count in counts.deliveries_waiting.items():
        DELIVERIES.labels(status=status).set(count)
    oldest = counts.oldest_pending_at
    OLDEST_PENDING.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    DRAFTS_PENDING.set(counts.drafts_pending)
    STORED_UP.set(1)


async def exposition(engine: AsyncEngine, now: datetime) -> bytes:
    """The text /metrics serves: this process's own metrics, then the stored state."""
    await read_stored(engine, now)
    return generate_latest() + generate_latest(STORED)
