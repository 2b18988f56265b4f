"""worker_presence: live worker processes, so that IDLE watches are shared out evenly

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.storage.tables

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("started_at", app.storage.tables.UTCDateTime(), nullable=False),
        sa.Column("seen_at", app.storage.tables.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_workers")),
    )


def downgrade() -> None:
    op.drop_table("workers")
