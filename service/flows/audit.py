"""Audit events, written in the caller's transaction so that they commit with the change."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import events, sessions
from service.domain.events import EventKind
from service.domain.views import ClientInfo


async def record(
    conn: AsyncConnection,
    kind: EventKind,
    now: datetime,
    user_id: uuid.UUID | None,
    session_ids: Sequence[uuid.UUID | None] = (None,),
    *,
    reason: str | None = None,
    client: ClientInfo | None = None,
    staff_id: uuid.UUID | None = None,
) -> None:
    """One event per session id (or one with no session); `staff_id` names the support
    console's staff member who made the change."""
    client = client or ClientInfo()
    await events.insert_auth_events(
        conn,
        kind=kind,
        now=now,
        user_id=user_id,
        session_ids=session_ids,
        reason=reason,
        ip=client.ip,
        user_agent=client.user_agent,
        staff_id=staff_id,
    )


async def revoke(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    now: datetime,
    reason: str,
    client: ClientInfo | None,
    *,
    only: Sequence[uuid.UUID] | None = None,
    keep: uuid.UUID | None = None,
    staff_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke the user's live sessions (`only` those, or all but `keep`) and record one
    session_revoked event for each; returns the ids revoked."""
    revoked = await sessions.revoke_sessions(conn, user_id, now, reason, only=only, keep=keep)
    await record(
        conn,
        EventKind.SESSION_REVOKED,
        now,
        user_id,
        revoked,
        reason=reason,
        client=client,
        staff_id=staff_id,
    )
    return revoked
