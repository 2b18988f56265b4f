"""subject fallback: threads keep a folded subject; answers without threading headers wait

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.domain.threads import subject_key

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("subject_key", sa.String(length=255), nullable=True))
        batch.create_index(
            batch.f("ix_threads_mailbox_id_subject_key"), ["mailbox_id", "subject_key"]
        )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("orphan_subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("thread_reason", sa.Text(), nullable=True))
    orphan = sa.column("orphan_subject", sa.String()).is_not(None)
    op.create_index(
        "ix_messages_orphans",
        "messages",
        ["mailbox_id"],
        sqlite_where=orphan,
        postgresql_where=orphan,
    )
    # Threads stored before this revision get their key here, so old mail can be matched too.
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, subject FROM threads")).all()
    if rows:
        conn.execute(
            sa.text("UPDATE threads SET subject_key = :key WHERE id = :id"),
            [{"key": subject_key(subject or ""), "id": tid} for tid, subject in rows],
        )


def downgrade() -> None:
    op.drop_index("ix_messages_orphans", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("thread_reason")
        batch.drop_column("orphan_subject")
    with op.batch_alter_table("threads") as batch:
        batch.drop_index(batch.f("ix_threads_mailbox_id_subject_key"))
        batch.drop_column("subject_key")
