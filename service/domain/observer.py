"""How the use cases report outcomes to metrics and logs without knowing either.

A flow calls its `AuthObserver` once an outcome is decided; the app wires in the implementations
(Prometheus counters, security warnings in the log). The base class does nothing, so an
implementation overrides only what it needs and the flows never check for None. Who the caller
is, for the request log, is bound by the web layer from what the flow returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

LoginOutcome = Literal["success", "failure", "throttled", "disabled", "unverified"]
RefreshOutcome = Literal["rotated", "grace_retry", "reuse_detected", "invalid"]
AdminAction = Literal["revoke_sessions", "disable", "enable"]

LOGIN_OUTCOMES: tuple[LoginOutcome, ...] = (
    "success",
    "failure",
    "throttled",
    "disabled",
    "unverified",
)
# A message delivery attempt: delivered, to be retried, or given up (AUTH_MAIL_RETRY_FOR).
MessageOutcome = Literal["sent", "retried", "failed"]
MESSAGE_OUTCOMES: tuple[MessageOutcome, ...] = ("sent", "retried", "failed")
REFRESH_OUTCOMES: tuple[RefreshOutcome, ...] = (
    "rotated",
    "grace_retry",
    "reuse_detected",
    "invalid",
)


class AuthObserver:
    """Called synchronously by the use cases after the outcome is decided; must not raise."""

    def on_login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        """A login attempt ended; `user_id` is None for an unknown email (and when throttled)."""

    def on_refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        """A refresh attempt ended; the ids are None when the token named no session."""

    def on_admin_action(self, action: AdminAction, user_id: uuid.UUID) -> None:
        """An admin changed a user's account or sessions."""

    def on_message(self, kind: str, outcome: MessageOutcome) -> None:
        """The outbox delivery tried a message of `kind` (never told its text or address)."""

    def on_id_token_rejected(self, provider: str, check: str) -> None:
        """An identity provider's ID token failed `check` (the client sees invalid_credentials)."""


class Observers(AuthObserver):
    """Fans every report out to several observers, in order."""

    def __init__(self, observers: Sequence[AuthObserver]) -> None:
        self._observers = tuple(observers)

    def on_login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        for observer in self._observers:
            observer.on_login(outcome, user_id)

    def on_refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        for observer in self._observers:
            observer.on_refresh(outcome, user_id, session_id)

    def on_admin_action(self, action: AdminAction, user_id: uuid.UUID) -> None:
        for observer in self._observers:
            observer.on_admin_action(action, user_id)

    def on_message(self, kind: str, outcome: MessageOutcome) -> None:
        for observer in self._observers:
            observer.on_message(kind, outcome)

    def on_id_token_rejected(self, provider: str, check: str) -> None:
        for observer in self._observers:
            observer.on_id_token_rejected(provider, check)
