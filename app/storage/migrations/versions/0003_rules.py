"""per-mailbox rules, time off, manual signals and the scheduler's indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.storage.tables

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("answered_at", app.storage.tables.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("answered_note", sa.Text(), nullable=True))
        batch.add_column(sa.Column("reopened_at", app.storage.tables.UTCDateTime(), nullable=True))
    op.create_index(
        "ix_threads_mailbox_id_next_check_at", "threads", ["mailbox_id", "next_check_at"]
    )
    dirty = sa.column("dirty", sa.Boolean()) == sa.true()
    op.create_index(
        "ix_threads_dirty",
        "threads",
        ["mailbox_id", "id"],
        sqlite_where=dirty,
        postgresql_where=dirty,
    )


def downgrade() -> None:
    op.drop_index("ix_threads_dirty", table_name="threads")
    op.drop_index("ix_threads_mailbox_id_next_check_at", table_name="threads")
    with op.batch_alter_table("threads") as batch:
        batch.drop_column("reopened_at")
        batch.drop_column("answered_note")
        batch.drop_column("answered_at")
