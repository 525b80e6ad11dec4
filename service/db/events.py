"""Statements on the auth_event table: the audit trail.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.driver import text_of
from service.db.models import auth_event


async def insert_auth_events(
    conn: AsyncConnection,
    *,
    kind: str,
    now: datetime,
    user_id: uuid.UUID | None,
    session_ids: Sequence[uuid.UUID | None] = (None,),
    reason: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    staff_id: uuid.UUID | None = None,
) -> None:
    """One event per session id (one event with no session by default)."""
    rows = [
        {
            "id": uuid.uuid4(),
            "user_id": user_id,
            "session_id": session_id,
            "kind": kind,
            "reason": reason,
            "ip": ip,
            "user_agent": user_agent,
            "created_at": now,
            "staff_id": staff_id,
        }
        for session_id in session_ids
    ]
    if rows:
        await conn.execute(insert(auth_event), rows)


class EventRow(NamedTuple):
    id: uuid.UUID
    kind: str
    reason: str | None
    session_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    created_at: datetime
    # The support console's staff member who caused the event, if one did.
    staff_id: uuid.UUID | None


async def list_auth_events(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[EventRow]:
    """The user's events, newest first, strictly after the `before` position (a page's last
    (created_at, id)); a backward scan of ix_auth_event_user_id_created_at_id."""
    conditions = [auth_event.c.user_id == user_id]
    if before is not None:
        conditions.append(tuple_(auth_event.c.created_at, auth_event.c.id) < tuple_(*before))
    statement = (
        select(*(auth_event.c[name] for name in EventRow._fields))
        .where(*conditions)
        .order_by(auth_event.c.created_at.desc(), auth_event.c.id.desc())
        .limit(limit)
    )
    rows = await conn.execute(statement)
    return [EventRow(**{**row._mapping, "ip": text_of(row.ip)}) for row in rows]


async def detach_auth_events(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    """Account deletion keeps the user's events (until pruned) but no longer links them to it."""
    await conn.execute(
        update(auth_event).where(auth_event.c.user_id == user_id).values(user_id=None)
    )


async def prune_auth_events(conn: AsyncConnection, before: datetime, batch_size: int) -> int:
    """Delete at most `batch_size` events created before `before`; the number deleted.

    PostgreSQL has no DELETE ... LIMIT: the batch is chosen by a bounded subquery on
    ix_auth_event_created_at. Call it in a loop, one short transaction per batch, until it returns
    less than `batch_size`, so pruning never holds many row locks or a long transaction.
    """
    batch = (
        select(auth_event.c.id)
        .where(auth_event.c.created_at < before)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(delete(auth_event).where(auth_event.c.id.in_(batch)))
    return int(result.rowcount)
