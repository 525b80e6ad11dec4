"""Account recovery and verification codes, and the outbox of messages.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    # New, empty tables: no lock on anything that exists.
    op.create_table(
        "one_time_code",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("created_at"),
        _timestamp("expires_at"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name="fk_one_time_code_user_id_user",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_one_time_code"),
    )
    op.create_index("ix_one_time_code_user_id_purpose", "one_time_code", ["user_id", "purpose"])
    op.create_index("ix_one_time_code_expires_at", "one_time_code", ["expires_at"])
    op.create_table(
        "outbox_message",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("redacted_text", sa.Text(), nullable=True),
        sa.Column("redacted_html", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("due_at"),
        _timestamp("give_up_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _timestamp("claimed_until", nullable=True),
        _timestamp("sent_at", nullable=True),
        _timestamp("failed_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_message"),
    )
    op.create_index(
        "ix_outbox_message_due_at",
        "outbox_message",
        ["due_at"],
        postgresql_where=sa.text("sent_at IS NULL AND failed_at IS NULL"),
    )
    op.create_index(
        "ix_outbox_message_sent_at",
        "outbox_message",
        ["sent_at"],
        postgresql_where=sa.text("sent_at IS NOT NULL"),
    )
    op.create_index(
        "ix_outbox_message_failed_at",
        "outbox_message",
        ["failed_at"],
        postgresql_where=sa.text("failed_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox_message")
    op.drop_table("one_time_code")
