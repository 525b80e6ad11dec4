"""The audit trail: a user's events, newest first, in pages."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import events
from service.domain.views import EventPage, EventPosition, EventView


class AuditTrail:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(
        self, user_id: uuid.UUID, limit: int, after: EventPosition | None = None
    ) -> EventPage:
        """The user's events, newest first, starting after `after` (a page's `next`)."""
        async with self._engine.connect() as conn:
            rows = await events.list_auth_events(conn, user_id, limit + 1, after)
        views = [
            EventView(
                id=row.id,
                kind=row.kind,
                reason=row.reason,
                session_id=row.session_id,
                ip=None if row.ip is None else str(row.ip),
                user_agent=row.user_agent,
                created_at=row.created_at,
            )
            for row in rows[:limit]
        ]
        more = len(rows) > limit
        return EventPage(views, (views[-1].created_at, views[-1].id) if more else None)
