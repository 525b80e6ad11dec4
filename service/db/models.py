"""The schema, as SQLAlchemy tables. Alembic migrations must describe exactly this
(tests/db/test_migrations.py compares them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
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
    # NULL for an account made by an identity provider: no password until a reset sets one.
    Column("password_hash", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    _timestamp("disabled_at", nullable=True),
    # When the user proved control of the address (a code, a reset, an identity provider).
    _timestamp("email_verified_at", nullable=True),
    # The address in its canonical form (service/domain/emails.py): one account per form...
    Column("email_canonical", Text, nullable=False),
    # ...except for accounts that already collided when the rule came (migration 0007): each is
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
    # The support console's search by email prefix: text_pattern_ops compares byte-wise, so a
    # prefix range scan works whatever the database's collation.
    Index(
        "ix_user_email_lower_prefix",
        func.lower(text("email")),
        postgresql_ops={"lower_1": "text_pattern_ops"},
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
    # The support console's staff member who made the change (NULL: the user, the admin key or
    # the server). No foreign key: the event names them even after they are removed.
    Column("staff_id", UUID(as_uuid=True), nullable=True),
    # A user's events, newest first, paged by (created_at, id); also finds them for deletion.
    Index("ix_auth_event_user_id_created_at_id", "user_id", "created_at", "id"),
    # Pruning by age.
    Index("ix_auth_event_created_at", "created_at"),
)

staff = Table(
    "staff",
    metadata,
    # Support console accounts: not users (they never get tokens), managed by `rotor staff`.
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("role", Text, nullable=False),
    _timestamp("created_at"),
    CheckConstraint("role IN ('support', 'admin')", name="role"),
    Index("uq_staff_email_lower", func.lower(text("email")), unique=True),
)

console_session = Table(
    "console_session",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    # SHA-256 of the cookie's token: a database copy cannot be used to sign in.
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column(
        "staff_id", UUID(as_uuid=True), ForeignKey("staff.id", ondelete="CASCADE"), nullable=False
    ),
    Column("ip", INET, nullable=True),
    Column("user_agent", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("last_used_at"),
    # The absolute end (12 hours after sign-in); the idle end is last_used_at + 30 minutes.
    _timestamp("expires_at"),
    Index("ix_console_session_staff_id", "staff_id"),
    Index("ix_console_session_expires_at", "expires_at"),
)

# login_failure also holds the send counters of account recovery and verification, with kinds
# "code_address" (messages per address) and "code_ip" (forgot/resend requests per client IP):
# the same windowed counter, shared by every process, pruned with the login counters.

one_time_code = Table(
    "one_time_code",
    metadata,
    # A recovery or verification code: only its keyed hash is stored (a dump yields no code).
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    ),
    Column("purpose", Text, nullable=False),  # "password_reset" or "email_verification"
    Column("digest", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),  # wrong tries so far
    _timestamp("created_at"),
    _timestamp("expires_at"),
    # Issuing, checking and the ON DELETE CASCADE from user look codes up by user and purpose.
    Index("ix_one_time_code_user_id_purpose", "user_id", "purpose"),
    Index("ix_one_time_code_expires_at", "expires_at"),
)

outbox_message = Table(
    "outbox_message",
    metadata,
    # A message written in the transaction that caused it, delivered after it committed.
    Column("id", UUID(as_uuid=True), primary_key=True),  # also the Message-ID's left part
    Column("kind", Text, nullable=False),
    Column("recipient", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("html", Text, nullable=False),
    # The same parts with the code masked: they replace text and html once delivered.
    Column("redacted_text", Text, nullable=True),
    Column("redacted_html", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("due_at"),  # the next attempt
    _timestamp("give_up_at"),  # no attempt after this: then failed
    Column("attempts", Integer, nullable=False),
    # A delivery task's lease: while in the future, no other process sends this message.
    _timestamp("claimed_until", nullable=True),
    _timestamp("sent_at", nullable=True),
    _timestamp("failed_at", nullable=True),
    Column("last_error", Text, nullable=True),
    # The delivery tasks' claim: pending messages by due time.
    Index(
        "ix_outbox_message_due_at",
        "due_at",
        postgresql_where=text("sent_at IS NULL AND failed_at IS NULL"),
    ),
    # Pruning of delivered and failed messages by age.
    Index("ix_outbox_message_sent_at", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
    Index(
        "ix_outbox_message_failed_at", "failed_at", postgresql_where=text("failed_at IS NOT NULL")
    ),
)

identity = Table(
    "identity",
    metadata,
    # An account at an identity provider (its `sub`) that signs in as one user.
    Column("provider", Text, primary_key=True),
    Column("subject", Text, primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("user.id", ondelete="CASCADE"), nullable=False
    ),
    # The address the provider's last token carried, if any (Apple sends it only the first time).
    Column("email", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("last_used_at"),
    # One identity per provider per user (DELETE /v1/identities/{provider} names it); also the
    # index that lists a user's identities and serves the ON DELETE CASCADE.
    UniqueConstraint("user_id", "provider"),
)

id_token_use = Table(
    "id_token_use",
    metadata,
    # SHA-256 of each ID token that signed in, kept until the token expires: a replay within its
    # lifetime finds the row, in every process (INSERT ... ON CONFLICT DO NOTHING).
    Column("digest", LargeBinary, primary_key=True),
    _timestamp("expires_at"),
    Index("ix_id_token_use_expires_at", "expires_at"),
)
