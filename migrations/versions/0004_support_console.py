"""Support console: staff accounts, their console sessions, the staff member on audit events,
and an index for searching users by email prefix.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('support', 'admin')", name=op.f("ck_staff_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff")),
    )
    op.create_index("uq_staff_email_lower", "staff", [sa.text("lower(email)")], unique=True)
    op.create_table(
        "console_session",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("staff_id", sa.UUID(), nullable=False),
        sa.Column("ip", postgresql.INET(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
            name=op.f("fk_console_session_staff_id_staff"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_session")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_session_token_hash")),
    )
    op.create_index("ix_console_session_staff_id", "console_session", ["staff_id"])
    op.create_index("ix_console_session_expires_at", "console_session", ["expires_at"])
    # A nullable column with no default: a catalog change only, no rewrite of a large table.
    op.add_column("auth_event", sa.Column("staff_id", sa.UUID(), nullable=True))
    # "user" can be large and busy: build the index without blocking writes (CONCURRENTLY must
    # run outside the migration's transaction).
    with op.get_context().autocommit_block():
        op.create_index(
            "ix_user_email_lower_prefix",
            "user",
            [sa.text("lower(email) text_pattern_ops")],
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("ix_user_email_lower_prefix", table_name="user", postgresql_concurrently=True)
    op.drop_column("auth_event", "staff_id")
    op.drop_index("ix_console_session_expires_at", table_name="console_session")
    op.drop_index("ix_console_session_staff_id", table_name="console_session")
    op.drop_table("console_session")
    op.drop_index("uq_staff_email_lower", table_name="staff")
    op.drop_table("staff")
