"""Statements on the session table: create, look up (the batched session check of every
protected request), list and revoke.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import ColumnElement, DateTime, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.driver import fetch, fetchrow, text_of
from service.db.liveness import live_clause
from service.db.models import session


async def insert_session(
    conn: AsyncConnection,
    *,
    session_id: uuid.UUID,
    user_id: uuid.UUID,
    device_name: str | None,
    platform: str | None,
    user_agent: str | None,
    ip: str | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(session).values(
            id=session_id,
            user_id=user_id,
            device_name=device_name,
            platform=platform,
            user_agent=user_agent,
            ip=ip,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
    )


class SessionWithUser(NamedTuple):
    id: uuid.UUID
    last_used_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    user_id: uuid.UUID
    email: str
    user_created_at: datetime
    disabled_at: datetime | None
    email_verified_at: datetime | None


_SESSION_WITH_USER = """
SELECT s.id, s.last_used_at, s.expires_at, s.revoked_at,
    u.id AS user_id, u.email, u.created_at AS user_created_at, u.disabled_at,
    u.email_verified_at
FROM session s JOIN "user" u ON u.id = s.user_id
WHERE s.id = $1 AND s.user_id = $2
"""


async def find_session_with_user(
    conn: AsyncConnection, session_id: uuid.UUID, user_id: uuid.UUID
) -> SessionWithUser | None:
    """One primary-key lookup: the session and its user."""
    record = await fetchrow(conn, _SESSION_WITH_USER, session_id, user_id)
    return None if record is None else SessionWithUser(**record)


_SESSIONS_WITH_USERS = """
SELECT s.id, s.last_used_at, s.expires_at, s.revoked_at,
    u.id AS user_id, u.email, u.created_at AS user_created_at, u.disabled_at,
    u.email_verified_at
FROM session s JOIN "user" u ON u.id = s.user_id
WHERE s.id = ANY($1::uuid[])
"""


async def find_sessions_with_users(
    conn: AsyncConnection, session_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, SessionWithUser]:
    """The session check of every protected request (see db/batching.py): primary-key
    lookups of many sessions and their users in one statement, by session id."""
    records = await fetch(conn, _SESSIONS_WITH_USERS, list(session_ids))
    return {record["id"]: SessionWithUser(**record) for record in records}


class LiveSession(NamedTuple):
    id: uuid.UUID
    device_name: str | None
    platform: str | None
    user_agent: str | None
    ip: str | None
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime


async def list_live_sessions(
    conn: AsyncConnection, user_id: uuid.UUID, now: datetime, idle_ttl: int
) -> list[LiveSession]:
    """The user's live sessions, most recently used first."""
    statement = (
        select(*(session.c[name] for name in LiveSession._fields))
        .where(session.c.user_id == user_id, live_clause(now, idle_ttl))
        .order_by(session.c.last_used_at.desc(), session.c.id)
    )
    rows = await conn.execute(statement)
    return [LiveSession(**{**row._mapping, "ip": text_of(row.ip)}) for row in rows]


async def live_session_ids_oldest_first(
    conn: AsyncConnection, user_id: uuid.UUID, now: datetime, idle_ttl: int
) -> list[uuid.UUID]:
    statement = (
        select(session.c.id)
        .where(session.c.user_id == user_id, live_clause(now, idle_ttl))
        .order_by(session.c.last_used_at, session.c.id)
    )
    return list((await conn.execute(statement)).scalars())


def _revocation_time(now: datetime) -> ColumnElement[datetime]:
    """`now`, but never before the session's last use.

    A revocation and a rotation of one session are serialized by its row lock, but each took its
    clock reading before waiting for that lock (and two processes' clocks may differ): a
    revocation that commits after a refresh could otherwise be stamped before the token that
    refresh issued. The UPDATE computes this on the row version it finally locks.
    """
    return func.greatest(literal(now, DateTime(timezone=True)), session.c.last_used_at)


async def revoke_sessions(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    now: datetime,
    reason: str,
    *,
    only: Sequence[uuid.UUID] | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Revoke the user's unrevoked sessions (all, `only` these, or all but `keep`)."""
    conditions = [session.c.user_id == user_id, session.c.revoked_at.is_(None)]
    if only is not None:
        conditions.append(session.c.id.in_(list(only)))
    if keep is not None:
        conditions.append(session.c.id != keep)
    statement = (
        update(session)
        .where(*conditions)
        .values(revoked_at=_revocation_time(now), revoke_reason=reason)
        .returning(session.c.id)
    )
    return list((await conn.execute(statement)).scalars())


async def revoke_session(
    conn: AsyncConnection, session_id: uuid.UUID, now: datetime, reason: str
) -> bool:
    statement = (
        update(session)
        .where(session.c.id == session_id, session.c.revoked_at.is_(None))
        .values(revoked_at=_revocation_time(now), revoke_reason=reason)
        .returning(session.c.id)
    )
    return (await conn.execute(statement)).first() is not None
