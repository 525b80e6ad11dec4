"""How the use cases report outcomes to metrics and logs without knowing either.

`Auth` calls an `AuthObserver`; the web layer wires in the implementations (Prometheus counters,
security warnings, the request log's user and session ids). The base class does nothing, so an
implementation overrides only what it needs and the use cases never check for None.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

LoginOutcome = Literal["success", "failure", "throttled", "disabled"]
RefreshOutcome = Literal["rotated", "grace_retry", "reuse_detected", "invalid"]
AdminAction = Literal["revoke_sessions", "disable", "enable"]

LOGIN_OUTCOMES: tuple[LoginOutcome, ...] = ("success", "failure", "throttled", "disabled")
REFRESH_OUTCOMES: tuple[RefreshOutcome, ...] = (
    "rotated",
    "grace_retry",
    "reuse_detected",
    "invalid",
)


class AuthObserver:
    """Called synchronously by the use cases after the outcome is decided; must not raise."""

    def identified(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
        """The caller of this request is known (valid access token, login or refresh)."""

    def login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        """A login attempt ended; `user_id` is None for an unknown email (and when throttled)."""

    def refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        """A refresh attempt ended; the ids are None when the token named no session."""

    def admin_action(self, action: AdminAction, user_id: uuid.UUID) -> None:
        """An admin changed a user's account or sessions."""


class Observers(AuthObserver):
    """Fans every report out to several observers, in order."""

    def __init__(self, observers: Sequence[AuthObserver]) -> None:
        self._observers = tuple(observers)

    def identified(self, user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
        for observer in self._observers:
            observer.identified(user_id, session_id)

    def login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        for observer in self._observers:
            observer.login(outcome, user_id)

    def refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        for observer in self._observers:
            observer.refresh(outcome, user_id, session_id)

    def admin_action(self, action: AdminAction, user_id: uuid.UUID) -> None:
        for observer in self._observers:
            observer.admin_action(action, user_id)
