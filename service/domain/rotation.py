"""May this refresh token rotate now? The rule in Python, over the state of a token row.

Its SQL form is the `fresh` step of the one-statement rotation (service/db/refresh_tokens.py);
tests/db/test_rotation_rule.py runs one table of cases through both and asserts the same verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from service.domain.sessions import session_live


class TokenState(Protocol):
    """What the rule reads of a refresh token, its session and its user."""

    @property
    def expires_at(self) -> datetime: ...
    @property
    def spent_at(self) -> datetime | None: ...
    @property
    def revoked_at(self) -> datetime | None: ...
    @property
    def session_expires_at(self) -> datetime: ...
    @property
    def last_used_at(self) -> datetime: ...
    @property
    def disabled_at(self) -> datetime | None: ...


def session_usable(state: TokenState, now: datetime, idle: timedelta) -> bool:
    """The token's session is live and its user enabled: any token of it may be used at all
    (rotated, or retried within grace)."""
    return state.disabled_at is None and session_live(
        state.revoked_at, state.session_expires_at, state.last_used_at, now, idle
    )


def may_rotate(state: TokenState, now: datetime, idle: timedelta) -> bool:
    """A token whose secret matched may rotate now: unspent, unexpired, its session usable."""
    return state.spent_at is None and now < state.expires_at and session_usable(state, now, idle)
