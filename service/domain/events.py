"""Kinds of audit events (the auth_event table; docs/audit.md says what each records)."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    REFRESH_REUSE_DETECTED = "refresh_reuse_detected"
    SESSION_REVOKED = "session_revoked"
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (an event name, not a password)
    ACCOUNT_DELETED = "account_deleted"
    ADMIN_SESSIONS_REVOKED = "admin_sessions_revoked"
    ADMIN_DISABLED = "admin_disabled"
    ADMIN_ENABLED = "admin_enabled"
    # Changes made by a staff member in the support console (the event's staff_id names them).
    STAFF_SESSIONS_REVOKED = "staff_sessions_revoked"
    STAFF_DISABLED = "staff_disabled"
    STAFF_ENABLED = "staff_enabled"
    STAFF_PASSWORD_RESET_SENT = "staff_password_reset_sent"  # noqa: S105 (an event name)
    # reason: the provider's name (docs/identity-providers.md). A sign-in with an ID token is a
    # `login` event whose reason is "idtoken:<provider>".
    IDENTITY_LINKED = "identity_linked"
    IDENTITY_UNLINKED = "identity_unlinked"
