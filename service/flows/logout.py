"""Logout: end the caller's session, the others, or all of them. Idempotent."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import refresh_tokens, sessions
from service.domain.clock import Clock
from service.domain.errors import InvalidToken
from service.domain.events import EventKind
from service.domain.sessions import session_live
from service.domain.tokens import AccessClaims, RefreshToken
from service.domain.views import ClientInfo, LogoutScope, SessionRef
from service.flows import audit
from service.flows.issuing import TokenIssuer


class Logout:
    def __init__(self, engine: AsyncEngine, issuer: TokenIssuer, clock: Clock) -> None:
        self._engine = engine
        self._idle = issuer.idle
        self._clock = clock

    async def with_access_token(
        self, claims: AccessClaims, scope: LogoutScope, client: ClientInfo | None = None
    ) -> SessionRef:
        """Logout named by a validly signed, unexpired access token (its session may have
        ended already: still a success)."""
        named = SessionRef(claims.user_id, claims.session_id)
        await self._logout(named, scope, client)
        return named

    async def with_refresh_token(
        self, raw_token: str | None, scope: LogoutScope, client: ClientInfo | None = None
    ) -> SessionRef:
        """Logout named by any refresh token ever issued in a session, spent or not; raises
        InvalidToken for one this service did not issue."""
        presented = RefreshToken.parse(raw_token) if raw_token is not None else None
        if presented is None:
            raise InvalidToken()
        async with self._engine.connect() as conn:
            row = await refresh_tokens.find_refresh_token_session(conn, presented.id)
        if row is None or not presented.matches(row.verifier):
            raise InvalidToken()
        named = SessionRef(row.user_id, row.session_id)
        await self._logout(named, scope, client)
        return named

    async def _logout(
        self, named: SessionRef, scope: LogoutScope, client: ClientInfo | None
    ) -> None:
        user_id, session_id = named.user_id, named.session_id
        async with self._engine.begin() as conn:
            now = self._clock()
            if scope == "local":
                if await sessions.revoke_session(conn, session_id, now, "logout"):
                    await audit.record(
                        conn,
                        EventKind.SESSION_REVOKED,
                        now,
                        user_id,
                        [session_id],
                        reason="logout",
                        client=client,
                    )
                return
            # Ending other sessions takes a live session: an ended session's leftover token
            # must not be able to log its user out everywhere.
            row = await sessions.find_session_with_user(conn, session_id, user_id)
            if row is None or not session_live(
                row.revoked_at, row.expires_at, row.last_used_at, now, self._idle
            ):
                return
            keep = session_id if scope == "others" else None
            await audit.revoke(conn, user_id, now, f"logout_{scope}", client, keep=keep)
