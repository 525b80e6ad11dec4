"""Identity providers: the identity table, one-time use of ID tokens, password-less accounts.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Dropping NOT NULL is a catalog change only: no rewrite, no scan.
    op.alter_column("user", "password_hash", existing_type=sa.Text(), nullable=True)
    op.create_table(
        "identity",
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name="fk_identity_user_id_user", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("provider", "subject", name="pk_identity"),
        sa.UniqueConstraint("user_id", "provider", name="uq_identity_user_id_provider"),
    )
    op.create_table(
        "id_token_use",
        sa.Column("digest", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_id_token_use"),
    )
    op.create_index("ix_id_token_use_expires_at", "id_token_use", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_id_token_use_expires_at", table_name="id_token_use")
    op.drop_table("id_token_use")
    op.drop_table("identity")
    # Password-less accounts cannot keep their rows under NOT NULL: they go (with their
    # sessions, by cascade), as they could not sign in without their identities anyway.
    op.execute('DELETE FROM "user" WHERE password_hash IS NULL')
    op.alter_column("user", "password_hash", existing_type=sa.Text(), nullable=False)
