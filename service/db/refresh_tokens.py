"""Statements on the refresh_token table: issue, lock, and the one-statement rotation of a
batch of tokens.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.driver import fetch
from service.db.liveness import live_sql
from service.db.models import refresh_token, session, user


async def insert_refresh_token(
    conn: AsyncConnection,
    *,
    token_id: uuid.UUID,
    session_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    verifier: bytes,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(refresh_token).values(
            id=token_id,
            session_id=session_id,
            parent_id=parent_id,
            verifier=verifier,
            issued_at=now,
            expires_at=expires_at,
        )
    )


class LockedRefreshToken(NamedTuple):
    """A refresh token with its session and user, as lock_refresh_token returns it."""

    id: uuid.UUID
    verifier: bytes
    expires_at: datetime
    spent_at: datetime | None
    session_id: uuid.UUID
    user_id: uuid.UUID
    last_used_at: datetime
    session_expires_at: datetime
    revoked_at: datetime | None
    email: str
    user_created_at: datetime
    disabled_at: datetime | None
    email_verified_at: datetime | None


async def lock_refresh_token(
    conn: AsyncConnection, token_id: uuid.UUID
) -> LockedRefreshToken | None:
    """The token, its session and its user, with the token and session rows locked.

    Locking both rows serializes every rotation of a token and every revocation of its session:
    a second refresh of the same token waits here and then sees it spent.
    """
    return await find_refresh_token(conn, token_id, lock=True)


async def find_refresh_token(
    conn: AsyncConnection, token_id: uuid.UUID, *, lock: bool = False
) -> LockedRefreshToken | None:
    """The token, its session and its user by primary key (rows locked only with `lock`)."""
    statement = (
        select(
            refresh_token.c.id,
            refresh_token.c.verifier,
            refresh_token.c.expires_at,
            refresh_token.c.spent_at,
            session.c.id.label("session_id"),
            session.c.user_id,
            session.c.last_used_at,
            session.c.expires_at.label("session_expires_at"),
            session.c.revoked_at,
            user.c.email,
            user.c.created_at.label("user_created_at"),
            user.c.disabled_at,
            user.c.email_verified_at,
        )
        .join(session, session.c.id == refresh_token.c.session_id)
        .join(user, user.c.id == session.c.user_id)
        .where(refresh_token.c.id == token_id)
    )
    if lock:
        statement = statement.with_for_update(of=[refresh_token, session])
    found = (await conn.execute(statement)).first()
    return None if found is None else LockedRefreshToken(**found._mapping)


# The whole rotation of live, unspent, unexpired tokens in one statement (one round trip, no
# BEGIN/COMMIT), for a batch of refreshes (service/db/batching.py) of distinct tokens: lock each
# token and its session row exactly as lock_refresh_token does, then spend, insert the child and
# touch the session only for the tokens that may rotate now (the rule of service/flows/refresh.py;
# the session part is service/db/liveness.py's).
# Rows are locked in token id order, so two batches sharing tokens (the same token refreshed on
# two processes at once) wait for each other instead of deadlocking. Data-modifying CTEs run
# once, in the statement's own transaction; a concurrent rotation of the same token waits on the
# row lock and then sees it spent (FOR UPDATE re-reads the newest row), so it rotates nothing.
# Every locked row is returned, with child_expires_at NULL where nothing was rotated. A session
# has at most one unspent token, so it is touched at most once.
_ROTATE = """
WITH asked AS (
    SELECT * FROM unnest($1::uuid[], $2::bytea[], $3::uuid[], $4::bytea[], $5::text[], $6::inet[])
        AS asked (token_id, verifier, child_id, child_verifier, user_agent, ip)
), locked AS (
    SELECT rt.id, rt.verifier, rt.expires_at, rt.spent_at,
        s.id AS session_id, s.user_id, s.last_used_at, s.expires_at AS session_expires_at,
        s.revoked_at, u.email, u.created_at AS user_created_at, u.disabled_at,
        u.email_verified_at
    FROM refresh_token rt
    JOIN session s ON s.id = rt.session_id
    JOIN "user" u ON u.id = s.user_id
    WHERE rt.id = ANY($1::uuid[])
    ORDER BY rt.id
    FOR UPDATE OF rt, s
), fresh AS (
    SELECT locked.id, locked.session_id, locked.session_expires_at,
        asked.child_id, asked.child_verifier, asked.user_agent, asked.ip
    FROM locked JOIN asked ON asked.token_id = locked.id
    WHERE locked.verifier = asked.verifier AND locked.spent_at IS NULL
        AND locked.expires_at > $7::timestamptz
        AND locked.disabled_at IS NULL AND {live}
), spent AS (
    UPDATE refresh_token SET spent_at = $7::timestamptz
    FROM fresh
    WHERE refresh_token.id = fresh.id AND refresh_token.spent_at IS NULL
    RETURNING fresh.*
), child AS (
    INSERT INTO refresh_token (id, session_id, parent_id, verifier, issued_at, expires_at)
    SELECT child_id, session_id, id, child_verifier, $7::timestamptz,
        LEAST($7::timestamptz + $8::interval, session_expires_at)
    FROM spent
    RETURNING parent_id, expires_at
), touched AS (
    UPDATE session SET last_used_at = $7::timestamptz, user_agent = spent.user_agent,
        ip = spent.ip
    FROM spent
    WHERE session.id = spent.session_id
)
SELECT locked.*, child.expires_at AS child_expires_at
FROM locked LEFT JOIN child ON child.parent_id = locked.id
""".format(  # noqa: S608 (constant fragments, no input)
    live=live_sql(
        revoked_at="locked.revoked_at",
        expires_at="locked.session_expires_at",
        last_used_at="locked.last_used_at",
        now="$7::timestamptz",
        idle="$8::interval",
    )
)


class RotationAsk(NamedTuple):
    """One refresh's part of a rotation batch: the presented token and the child to insert."""

    token_id: uuid.UUID
    verifier: bytes
    child_id: uuid.UUID
    child_verifier: bytes
    user_agent: str | None
    ip: str | None


class Rotation(NamedTuple):
    """The locked row of lock_refresh_token, and the child's expiry if it was rotated."""

    id: uuid.UUID
    verifier: bytes
    expires_at: datetime
    spent_at: datetime | None
    session_id: uuid.UUID
    user_id: uuid.UUID
    last_used_at: datetime
    session_expires_at: datetime
    revoked_at: datetime | None
    email: str
    user_created_at: datetime
    disabled_at: datetime | None
    email_verified_at: datetime | None
    child_expires_at: datetime | None


async def rotate_refresh_tokens(
    conn: AsyncConnection, asks: Sequence[RotationAsk], *, now: datetime, idle_ttl: timedelta
) -> dict[uuid.UUID, Rotation]:
    """Rotate each token (all distinct) that may be rotated right now. By token id, every known
    token's locked row, with child_expires_at None where it was not rotated (the caller decides
    why); unknown ids are absent."""
    records = await fetch(conn, _ROTATE, *rotate_arguments(asks, now, idle_ttl))
    return {record["id"]: Rotation(**record) for record in records}


def rotate_arguments(
    asks: Sequence[RotationAsk], now: datetime, idle_ttl: timedelta
) -> list[object]:
    """_ROTATE's parameters: one array per RotationAsk field (for unnest), then now and idle_ttl."""
    columns = [[ask[i] for ask in asks] for i in range(len(RotationAsk._fields))]
    return [*columns, now, idle_ttl]


class ChildToken(NamedTuple):
    id: uuid.UUID
    expires_at: datetime
    spent_at: datetime | None


async def find_child(conn: AsyncConnection, parent_id: uuid.UUID) -> ChildToken | None:
    """The token that rotated `parent_id`, if any (parent_id is unique: one child at most)."""
    statement = select(
        refresh_token.c.id, refresh_token.c.expires_at, refresh_token.c.spent_at
    ).where(refresh_token.c.parent_id == parent_id)
    found = (await conn.execute(statement)).first()
    return None if found is None else ChildToken(**found._mapping)


class TokenSession(NamedTuple):
    verifier: bytes
    session_id: uuid.UUID
    user_id: uuid.UUID


async def find_refresh_token_session(
    conn: AsyncConnection, token_id: uuid.UUID
) -> TokenSession | None:
    """The session (and its user) that issued a token, spent or not."""
    statement = (
        select(refresh_token.c.verifier, session.c.id.label("session_id"), session.c.user_id)
        .join(session, session.c.id == refresh_token.c.session_id)
        .where(refresh_token.c.id == token_id)
    )
    found = (await conn.execute(statement)).first()
    return None if found is None else TokenSession(**found._mapping)
