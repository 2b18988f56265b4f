"""mailbox baseline and drafts backlog: a first sync's threads are decided only once it has
read everything; how many quiet threads still wait for their draft

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Mailboxes that exist already have synced (or are syncing) the old way: not a baseline.
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(
            sa.Column("baseline", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("drafts_preparing", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("drafts_preparing")
        batch.drop_column("baseline")
