"""oauth2 sign-in: a mailbox's provider, refresh token and expiry; sign-ins under way

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.storage.tables import BigId, UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(sa.Column("oauth2_provider", sa.String(32), nullable=True))
        batch.add_column(sa.Column("refresh_token_enc", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("token_expires_at", UTCDateTime(), nullable=True))
    op.create_table(
        "oauth2_starts",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id",
            BigId,
            sa.ForeignKey("users.id", ondelete="CASCADE", name="fk_oauth2_starts_user_id_users"),
            nullable=False,
        ),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("verifier_enc", sa.LargeBinary(), nullable=False),
        sa.Column(
            "mailbox_id",
            BigId,
            sa.ForeignKey(
                "mailboxes.id", ondelete="CASCADE", name="fk_oauth2_starts_mailbox_id_mailboxes"
            ),
            nullable=True,
        ),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth2_starts"),
        sa.UniqueConstraint("state_hash", name="uq_oauth2_starts_state_hash"),
    )
    op.create_index("ix_oauth2_starts_expires_at", "oauth2_starts", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oauth2_starts_expires_at", "oauth2_starts")
    op.drop_table("oauth2_starts")
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_column("token_expires_at")
        batch.drop_column("refresh_token_enc")
        batch.drop_column("oauth2_provider")
