"""unread index: the bodies still to read are found without scanning the mailbox

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    unread = sa.column("details").is_(None) & sa.column("kind", sa.String()).in_(
        ("reply", "auto_reply", "bounce")
    )
    op.create_index(
        "ix_messages_unread",
        "messages",
        ["mailbox_id"],
        sqlite_where=unread,
        postgresql_where=unread,
    )


def downgrade() -> None:
    op.drop_index("ix_messages_unread", table_name="messages")
