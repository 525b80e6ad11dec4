"""The schema, as SQLAlchemy tables. Alembic migrations must describe exactly this
(tests/db/test_migrations.py compares them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import INET, UUID

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _timestamp(name: str, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


user = Table(
    "user",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    _timestamp("disabled_at", nullable=True),
    # When the user proved control of the address (a code, a reset, an identity provider).
    _timestamp("email_verified_at", nullable=True),
    # The address in its canonical form (service/domain/emails.py): one account per form...
    Column("email_canonical", Text, nullable=False),
    # ...except for accounts that already collided when the rule came (migration 0004): each is
    # out of the unique index, found by its exact address, until an operator resolves the group.
    Column("email_collision", Boolean, nullable=False, server_default=text("false")),
    # The rule before the canonical form: kept, so no two accounts ever share lower(email).
    Index("uq_user_email_lower", func.lower(text("email")), unique=True),
    Index(
        "uq_user_email_canonical",
        "email_canonical",
        unique=True,
        postgresql_where=text("NOT email_collision"),
    ),
    Index(
        "ix_user_email_canonical_collision",
        "email_canonical",
        postgresql_where=text("email_collision"),
    ),
)

session = Table(
    "session",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    ),
    Column("device_name", Text, nullable=True),
    Column("platform", Text, nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("ip", INET, nullable=True),
    _timestamp("created_at"),
    _timestamp("last_used_at"),
    # The absolute end; the idle end is last_used_at + AUTH_SESSION_IDLE_TTL.
    _timestamp("expires_at"),
    _timestamp("revoked_at", nullable=True),
    Column("revoke_reason", Text, nullable=True),
    # Listing a user's sessions (most recently used first), the session cap, and the
    # ON DELETE CASCADE from user all look sessions up by user.
    Index("ix_session_user_id_last_used_at", "user_id", "last_used_at"),
    # Pruning finds ended sessions by their absolute end, and revoked ones by revocation time.
    Index("ix_session_expires_at", "expires_at"),
    Index("ix_session_revoked_at", "revoked_at", postgresql_where=text("revoked_at IS NOT NULL")),
)

refresh_token = Table(
    "refresh_token",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "session_id",
        UUID(as_uuid=True),
        ForeignKey("session.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # Rotation lineage. Unique: a token is rotated at most once, enforced by the database too.
    Column(
        "parent_id",
        UUID(as_uuid=True),
        ForeignKey("refresh_token.id", ondelete="CASCADE"),
        nullable=True,
        unique=True,
    ),
    # SHA-256 of the token's secret: useless for refreshing if the database leaks.
    Column("verifier", LargeBinary, nullable=False),
    _timestamp("issued_at"),
    _timestamp("expires_at"),
    _timestamp("spent_at", nullable=True),
    Index("ix_refresh_token_session_id", "session_id"),
)

login_failure = Table(
    "login_failure",
    metadata,
    # One row per (kind, key, window start): a counter shared by every server process.
    # "account" (key: an HMAC of the canonical email), "ip" or "register_ip" (key: the network).
    Column("kind", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    _timestamp("window_start"),
    Column("failures", Integer, nullable=False),
    Index("ix_login_failure_window_start", "window_start"),
)

auth_event = Table(
    "auth_event",
    metadata,
    # The audit trail: one row per security-relevant change, written in the same transaction.
    Column("id", UUID(as_uuid=True), primary_key=True),
    # No foreign keys: an FK check takes a KEY SHARE lock on the user row, which would make
    # refresh-reuse and logout transactions (holding session locks) deadlock with an account
    # deletion's cascade; and events outlive the sessions that pruning deletes. Account deletion
    # sets its events' user_id to NULL itself. NULL also marks a failed login for an unknown email.
    Column("user_id", UUID(as_uuid=True), nullable=True),
    Column("session_id", UUID(as_uuid=True), nullable=True),
    Column("kind", Text, nullable=False),
    Column("reason", Text, nullable=True),
    Column("ip", INET, nullable=True),
    Column("user_agent", Text, nullable=True),
    _timestamp("created_at"),
    # A user's events, newest first, paged by (created_at, id); also finds them for deletion.
    Index("ix_auth_event_user_id_created_at_id", "user_id", "created_at", "id"),
    # Pruning by age.
    Index("ix_auth_event_created_at", "created_at"),
)
