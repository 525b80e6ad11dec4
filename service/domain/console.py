"""The support console's vocabulary: staff roles, console session tokens and their CSRF
tokens, what its pages show, and its errors. No HTTP, no SQL."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from service.domain.errors import AuthError
from service.domain.views import IdentityView, SessionView

Role = Literal["support", "admin"]
ROLES: tuple[Role, ...] = ("support", "admin")
IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    """What the database keeps of a console session token: a copy of the table cannot sign in."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def csrf_token(session_token: str) -> str:
    """The synchronizer token of a session's forms: derived from (so bound to) the session's
    secret, and telling nothing about it."""
    return hashlib.sha256(b"rotor-console-csrf\0" + session_token.encode("utf-8")).hexdigest()


def csrf_matches(session_token: str, submitted: str) -> bool:
    return hmac.compare_digest(csrf_token(session_token).encode(), submitted.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class StaffView:
    id: uuid.UUID
    email: str
    role: Role
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ConsoleCaller:
    """A signed-in staff member, as a console request knows them."""

    staff: StaffView
    session_id: uuid.UUID

    @property
    def is_admin(self) -> bool:
        return self.staff.role == "admin"


@dataclass(frozen=True, slots=True)
class UserSummary:
    id: uuid.UUID
    email: str
    email_verified: bool
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UserSearchPage:
    users: list[UserSummary]
    # The last email of this page (lower-cased) when more may follow; None on the last page.
    next_after: str | None


@dataclass(frozen=True, slots=True)
class ConsoleEvent:
    kind: str
    reason: str | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    # The staff member who caused it (their email, or their id once removed); None otherwise.
    staff: str | None


@dataclass(frozen=True, slots=True)
class UserDetail:
    user: UserSummary
    # None: this deployment has no identities (the page leaves the section out).
    identities: list[IdentityView] | None
    sessions: list[SessionView]
    events: list[ConsoleEvent]


class ConsoleSignInFailed(AuthError):
    code = "invalid_credentials"
    message = "The email or password is incorrect."


class ConsoleSessionEnded(AuthError):
    code = "console_session_ended"
    message = "Your console session has ended; sign in again."


class StaffForbidden(AuthError):
    code = "forbidden"
    message = "Only an admin may do this."
