"""What the holder of the admin key may do to any user: list and revoke sessions, read the audit
trail, disable and enable the account."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import users
from service.domain.clock import Clock
from service.domain.errors import NotFound
from service.domain.events import EventKind
from service.domain.observer import AuthObserver
from service.domain.views import ClientInfo, EventPage, EventPosition, SessionView
from service.flows import audit
from service.flows.events import AuditTrail
from service.flows.sessions import Sessions


def user_id_of(raw: str) -> uuid.UUID:
    """A user id from a URL; NotFound for anything that is not a UUID (no oracle, no 500)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound() from None


class Admin:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: Sessions,
        trail: AuditTrail,
        clock: Clock,
        observer: AuthObserver,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._trail = trail
        self._clock = clock
        self._observer = observer

    async def list_sessions(self, user_id: str) -> list[SessionView]:
        """The user's live sessions; raises NotFound for an unknown user."""
        return await self._sessions.list_live(await self._existing_user(user_id))

    async def list_events(
        self, user_id: str, limit: int, after: EventPosition | None = None
    ) -> EventPage:
        """The user's audit events; raises NotFound for an unknown user."""
        return await self._trail.page(await self._existing_user(user_id), limit, after)

    async def revoke_sessions(self, user_id: str, client: ClientInfo | None = None) -> None:
        """Revoke every session of the user; raises NotFound for an unknown user."""
        target = user_id_of(user_id)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await users.lock_user(conn, target) is None:
                raise NotFound()
            await audit.record(conn, EventKind.ADMIN_SESSIONS_REVOKED, now, target, client=client)
            await audit.revoke(conn, target, now, "admin", client)
        self._observer.on_admin_action("revoke_sessions", target)

    async def set_disabled(
        self, user_id: str, disabled: bool, client: ClientInfo | None = None
    ) -> None:
        """Disable (revoking every session at once) or enable the user; raises NotFound for an
        unknown user."""
        target = user_id_of(user_id)
        async with self._engine.begin() as conn:
            now = self._clock()
            if await users.lock_user(conn, target) is None:
                raise NotFound()
            await users.set_disabled(conn, target, now if disabled else None, now)
            kind = EventKind.ADMIN_DISABLED if disabled else EventKind.ADMIN_ENABLED
            await audit.record(conn, kind, now, target, client=client)
            if disabled:
                await audit.revoke(conn, target, now, "account_disabled", client)
        self._observer.on_admin_action("disable" if disabled else "enable", target)

    async def _existing_user(self, user_id: str) -> uuid.UUID:
        target = user_id_of(user_id)
        async with self._engine.connect() as conn:
            if await users.find_user(conn, target) is None:
                raise NotFound()
        return target
