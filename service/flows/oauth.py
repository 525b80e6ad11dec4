"""What the OAuth 2.0 endpoints need beyond the existing flows: whether a refresh token is live,
for introspection (RFC 7662). Refresh, revocation and the access-token checks are the flows
that /v1 uses (refresh.py, logout.py, authentication.py), called by service/web/oauth.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import refresh_tokens
from service.domain.clock import Clock
from service.domain.rotation import may_rotate
from service.domain.tokens import RefreshToken
from service.flows.issuing import TokenIssuer


@dataclass(frozen=True, slots=True)
class LiveRefreshToken:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: datetime


class OAuthTokens:
    def __init__(self, engine: AsyncEngine, issuer: TokenIssuer, clock: Clock) -> None:
        self._engine = engine
        self._idle = issuer.idle
        self._clock = clock

    async def live_refresh_token(self, raw_token: str) -> LiveRefreshToken | None:
        """The token's owner and expiry when it would rotate now: known, its secret right,
        unspent, unexpired, its session live and its user enabled; None otherwise (never
        raises for a bad token)."""
        presented = RefreshToken.parse(raw_token)
        if presented is None:
            return None
        async with self._engine.connect() as conn:
            row = await refresh_tokens.find_refresh_token(conn, presented.id)
        now = self._clock()
        if row is None or not presented.matches(row.verifier):
            return None
        if not may_rotate(row, now, self._idle):
            return None
        return LiveRefreshToken(row.user_id, row.session_id, row.expires_at)
