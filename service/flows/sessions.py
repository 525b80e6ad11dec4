"""The caller's devices: list the live sessions, end one of them."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import sessions
from service.domain.clock import Clock
from service.domain.errors import NotFound
from service.domain.views import ClientInfo, Principal, SessionView
from service.flows import audit


class Sessions:
    def __init__(self, engine: AsyncEngine, settings: Settings, clock: Clock) -> None:
        self._engine = engine
        self._idle_ttl = settings.session_idle_ttl
        self._clock = clock

    async def list_live(
        self, user_id: uuid.UUID, current: uuid.UUID | None = None
    ) -> list[SessionView]:
        """The user's live sessions, most recently used first (`current` flagged)."""
        now = self._clock()
        idle = timedelta(seconds=self._idle_ttl)
        async with self._engine.connect() as conn:
            rows = await sessions.list_live_sessions(conn, user_id, now, self._idle_ttl)
        return [
            SessionView(
                id=row.id,
                device_name=row.device_name,
                platform=row.platform,
                user_agent=row.user_agent,
                ip=row.ip,
                created_at=row.created_at,
                last_used_at=row.last_used_at,
                expires_at=min(row.expires_at, row.last_used_at + idle),
                current=row.id == current,
            )
            for row in rows
        ]

    async def end(
        self, principal: Principal, session_id: str, client: ClientInfo | None = None
    ) -> None:
        """End one of the caller's live sessions; raises NotFound for anything else, malformed
        ids included (no existence oracle)."""
        try:
            target = uuid.UUID(session_id)
        except ValueError:
            raise NotFound() from None
        async with self._engine.begin() as conn:
            now = self._clock()
            live = await sessions.live_session_ids_oldest_first(
                conn, principal.user.id, now, self._idle_ttl
            )
            if target not in live:
                raise NotFound()
            await audit.revoke(conn, principal.user.id, now, "user", client, only=[target])
