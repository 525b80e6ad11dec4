"""Starting sessions and issuing token pairs: shared by every flow that signs a user in or
rotates a token, so that lifetimes are computed in one place."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import Settings
from service.db import refresh_tokens, sessions
from service.domain.sessions import seconds_until
from service.domain.tokens import AccessTokens, RefreshToken
from service.domain.views import ClientInfo, IssuedTokens, UserView
from service.flows import audit


class TokenIssuer:
    def __init__(self, settings: Settings, access_tokens: AccessTokens) -> None:
        self._settings = settings
        self._access_tokens = access_tokens
        self.idle = timedelta(seconds=settings.session_idle_ttl)

    def issue(
        self,
        user: UserView,
        session_id: uuid.UUID,
        refresh_token: RefreshToken,
        refresh_expires_at: datetime,
        session_end: datetime,
        now: datetime,
    ) -> IssuedTokens:
        # An access token never outlives its session.
        access_end = min(now + timedelta(seconds=self._settings.access_ttl), session_end)
        return IssuedTokens(
            access_token=self._access_tokens.issue(user.id, session_id, now, access_end),
            expires_in=seconds_until(access_end, now),
            refresh_token=refresh_token.encode(),
            refresh_expires_in=seconds_until(refresh_expires_at, now),
            session_id=session_id,
            user=user,
        )

    async def start_session(
        self,
        conn: AsyncConnection,
        user: UserView,
        client: ClientInfo,
        device_name: str | None,
        platform: str | None,
        now: datetime,
    ) -> IssuedTokens:
        """A new session with its first refresh token, in the caller's transaction (which holds
        the user's row lock: see enforce_session_cap)."""
        await self.enforce_session_cap(conn, user.id, now, client)
        session_id = uuid.uuid4()
        session_end = now + timedelta(seconds=self._settings.session_max_ttl)
        await sessions.insert_session(
            conn,
            session_id=session_id,
            user_id=user.id,
            device_name=device_name,
            platform=platform,
            user_agent=client.user_agent,
            ip=client.ip,
            now=now,
            expires_at=session_end,
        )
        token = RefreshToken.new()
        token_end = min(now + self.idle, session_end)
        await refresh_tokens.insert_refresh_token(
            conn,
            token_id=token.id,
            session_id=session_id,
            parent_id=None,
            verifier=token.verifier,
            now=now,
            expires_at=token_end,
        )
        return self.issue(user, session_id, token, token_end, session_end, now)

    async def enforce_session_cap(
        self, conn: AsyncConnection, user_id: uuid.UUID, now: datetime, client: ClientInfo
    ) -> None:
        """Revoke the least recently used sessions so that one more fits under
        AUTH_MAX_SESSIONS. The caller holds the user's row lock, so racing logins cannot both
        see room for one."""
        live = await sessions.live_session_ids_oldest_first(
            conn, user_id, now, self._settings.session_idle_ttl
        )
        excess = len(live) - (self._settings.max_sessions - 1)
        if excess > 0:
            await audit.revoke(conn, user_id, now, "session_limit", client, only=live[:excess])
