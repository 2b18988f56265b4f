"""follow-up drafts and their question templates

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.storage.tables

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, app.storage.tables.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("mailbox_id", _ID, nullable=False),
        sa.Column("thread_id", _ID, nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("forwarded_message_id", sa.String(length=998), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("from_addr", sa.String(length=320), nullable=False),
        sa.Column("to_addrs", sa.JSON(), nullable=False),
        sa.Column("cc_addrs", sa.JSON(), nullable=False),
        sa.Column("skipped_attachments", sa.JSON(), nullable=False),
        sa.Column("dismiss_reason", sa.Text(), nullable=True),
        _when("snoozed_until"),
        sa.Column("delivery", sa.String(length=12), nullable=True),
        sa.Column("approved_revision", sa.Integer(), nullable=True),
        sa.Column("imap_folder", sa.String(length=512), nullable=True),
        sa.Column("imap_uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("imap_uid", sa.BigInteger(), nullable=True),
        _when("approved_at"),
        _when("sent_at"),
        _when("created_at", nullable=False),
        _when("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_drafts_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name=op.f("fk_drafts_thread_id_threads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint(
            "thread_id",
            "step",
            "forwarded_message_id",
            name=op.f("uq_drafts_thread_id_step_forwarded_message_id"),
        ),
    )
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_drafts_user_id_state_id"), ["user_id", "state", "id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_drafts_mailbox_id_state"), ["mailbox_id", "state"], unique=False
        )

    op.create_table(
        "draft_settings",
        sa.Column("mailbox_id", _ID, nullable=False),
        sa.Column("templates", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("attach_originals", sa.Boolean(), nullable=False),
        sa.Column("attachment_max_bytes", sa.Integer(), nullable=False),
        sa.Column("smtp_enabled", sa.Boolean(), nullable=False),
        sa.Column("smtp_host", sa.String(length=255), nullable=True),
        sa.Column("smtp_port", sa.Integer(), nullable=True),
        sa.Column("smtp_security", sa.String(length=10), nullable=True),
        sa.Column("smtp_username", sa.String(length=320), nullable=True),
        sa.Column("smtp_secret_enc", sa.LargeBinary(), nullable=True),
        _when("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name=op.f("fk_draft_settings_mailbox_id_mailboxes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mailbox_id", name=op.f("pk_draft_settings")),
    )


def downgrade() -> None:
    op.drop_table("draft_settings")
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drafts_mailbox_id_state"))
        batch_op.drop_index(batch_op.f("ix_drafts_user_id_state_id"))
    op.drop_table("drafts")
