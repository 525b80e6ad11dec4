"""What the flows hand back to their callers: plain values, no rows, no HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

LogoutScope = Literal["local", "others", "global"]


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """What the web layer knows about the caller's device and network."""

    user_agent: str | None = None
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class UserView:
    id: uuid.UUID
    email: str
    created_at: datetime
    email_verified: bool


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: uuid.UUID
    user: UserView


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a protected route: a live session of an enabled user."""

    user: UserView
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class SessionRef:
    """A session named by a credential, with its owner."""

    user_id: uuid.UUID
    session_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class SessionView:
    id: uuid.UUID
    device_name: str | None
    platform: str | None
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


@dataclass(frozen=True, slots=True)
class EventView:
    id: uuid.UUID
    kind: str
    reason: str | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    created_at: datetime


EventPosition = tuple[datetime, uuid.UUID]


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventView]
    # Where the next page starts (the last event's (created_at, id)); None on the last page.
    next: EventPosition | None


@dataclass(frozen=True, slots=True)
class IdentityView:
    """An account at an identity provider linked to a user."""

    provider: str
    subject: str
    email: str | None
    created_at: datetime
