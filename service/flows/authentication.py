"""Who is calling a protected route: a valid access token whose session is still live."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db import sessions
from service.db.batching import Batcher
from service.domain.clock import Clock
from service.domain.errors import InvalidToken
from service.domain.sessions import session_live
from service.domain.tokens import AccessClaims, AccessTokens
from service.domain.views import Principal, UserView
from service.flows.issuing import TokenIssuer


async def _read_sessions(
    conn: AsyncConnection, asks: Mapping[uuid.UUID, None]
) -> dict[uuid.UUID, sessions.SessionWithUser]:
    return await sessions.find_sessions_with_users(conn, list(asks))


class Authenticator:
    def __init__(
        self,
        engine: AsyncEngine,
        access_tokens: AccessTokens,
        issuer: TokenIssuer,
        clock: Clock,
    ) -> None:
        self._access_tokens = access_tokens
        self._idle = issuer.idle
        self._clock = clock
        # The session check of every protected request is one autocommit statement, shared by
        # the requests of the moment (service/db/batching.py).
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._session_reads: Batcher[uuid.UUID, None, sessions.SessionWithUser] = Batcher(
            autocommit, _read_sessions
        )

    def verify_access_token(self, token: str | None) -> AccessClaims:
        """Signature, claims and expiry only (no database); raises InvalidToken."""
        if not token:
            raise InvalidToken()
        return self._access_tokens.verify(token, self._clock())

    async def authenticate(self, token: str | None) -> Principal:
        """The caller, when the token is valid and its session live (revocation is immediate);
        raises InvalidToken otherwise."""
        return await self.principal_of(self.verify_access_token(token))

    async def principal_of(self, claims: AccessClaims) -> Principal:
        """The caller named by verified `claims`, when its session is live; raises InvalidToken
        otherwise. One batched session read (shared with the requests of the moment)."""
        row = await self._session_reads.ask(claims.session_id, None)
        now = self._clock()
        if (
            row is None
            or row.user_id != claims.user_id
            or row.disabled_at is not None
            or not session_live(row.revoked_at, row.expires_at, row.last_used_at, now, self._idle)
        ):
            raise InvalidToken()
        user = UserView(
            id=row.user_id,
            email=row.email,
            created_at=row.user_created_at,
            email_verified=row.email_verified_at is not None,
        )
        return Principal(user=user, session_id=row.id)
