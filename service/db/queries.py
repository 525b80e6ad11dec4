"""Every SQL statement the use cases run, as small functions over an AsyncConnection.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.

The statements on the hot paths (the session lookup of every protected request and the
refresh rotation) are plain SQL run on the driver's connection: SQLAlchemy's statement building,
execution context and result objects cost more CPU than the rest of those requests' Python
(see the README, Performance). The connection still comes from, and goes back to, the engine's pool.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import asyncpg
from sqlalchemy import (
    DateTime,
    Row,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.liveness import live_clause, live_sql
from service.db.models import auth_event, login_failure, refresh_token, session, user
from service.domain.emails import lenient_canonical

# A result row whose columns are read by name (row.email); SQLAlchemy types them as Any.
Record = Row[*tuple[Any, ...]]


async def _on_driver(
    conn: AsyncConnection, run: Callable[[asyncpg.Connection], Awaitable[Any]]
) -> Any:
    """One statement on the pooled connection's asyncpg connection (its prepared-statement cache
    makes this one round trip). A failure that may have left the connection in an unknown state
    (lost socket, timeout, cancellation) invalidates it, so the pool replaces it."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out pool connection always has one
    try:
        return await run(driver)
    except asyncpg.PostgresError as exc:
        if isinstance(exc, asyncpg.PostgresConnectionError):
            await conn.invalidate()
        raise
    except BaseException:
        await conn.invalidate()
        raise


async def _fetchrow(conn: AsyncConnection, sql: str, *args: object) -> Any:
    return await _on_driver(conn, lambda driver: driver.fetchrow(sql, *args))


async def _fetch(conn: AsyncConnection, sql: str, *args: object) -> list[Any]:
    records: list[Any] = await _on_driver(conn, lambda driver: driver.fetch(sql, *args))
    return records


# --- users -----------------------------------------------------------------------------------


async def insert_user(
    conn: AsyncConnection, user_id: uuid.UUID, email: str, password_hash: str, now: datetime
) -> bool:
    """Insert a user; False (and nothing written) when the email is taken: its canonical form
    (service/domain/emails.py) belongs to an account, or to a group of look-alikes that predate
    the rule (those are outside the unique index, hence the NOT EXISTS)."""
    statement = text(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " SELECT :id, :email, :canonical, :hash, :now, :now"
        ' WHERE NOT EXISTS (SELECT 1 FROM "user" WHERE email_canonical = :canonical'
        " AND email_collision)"
        " ON CONFLICT DO NOTHING RETURNING id"
    )
    arguments = {
        "id": user_id,
        "email": email,
        "canonical": lenient_canonical(email),
        "hash": password_hash,
        "now": now,
    }
    return (await conn.execute(statement, arguments)).first() is not None


async def find_user_by_email(conn: AsyncConnection, email: str) -> Record | None:
    """The account of `email`'s canonical form. An account of a look-alike group from before
    the rule is found by its exact address (lower() in PostgreSQL on both sides, as its old
    unique index compares), and wins over the group's resolved owner for that address."""
    form = lenient_canonical(email)
    colliding = select(user).where(
        user.c.email_canonical == form,
        user.c.email_collision,
        func.lower(user.c.email) == func.lower(email),
    )
    owner = select(user).where(user.c.email_canonical == form, ~user.c.email_collision)
    return (await conn.execute(union_all(colliding, owner).limit(1))).first()


async def find_user(conn: AsyncConnection, user_id: uuid.UUID) -> Record | None:
    return (await conn.execute(select(user).where(user.c.id == user_id))).first()


async def lock_user(conn: AsyncConnection, user_id: uuid.UUID) -> Record | None:
    """The user row, locked: serializes logins of one user (session cap) and password changes."""
    statement = select(user).where(user.c.id == user_id).with_for_update()
    return (await conn.execute(statement)).first()


async def set_password_hash(
    conn: AsyncConnection, user_id: uuid.UUID, password_hash: str, now: datetime
) -> None:
    statement = (
        update(user).where(user.c.id == user_id).values(password_hash=password_hash, updated_at=now)
    )
    await conn.execute(statement)


async def set_disabled(
    conn: AsyncConnection, user_id: uuid.UUID, disabled_at: datetime | None, now: datetime
) -> bool:
    statement = (
        update(user)
        .where(user.c.id == user_id)
        .values(disabled_at=disabled_at, updated_at=now)
        .returning(user.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def delete_user(conn: AsyncConnection, user_id: uuid.UUID) -> None:
    """Delete the user; its sessions and tokens go with it (ON DELETE CASCADE)."""
    await conn.execute(delete(user).where(user.c.id == user_id))


# --- sessions --------------------------------------------------------------------------------


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
    record = await _fetchrow(conn, _SESSION_WITH_USER, session_id, user_id)
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
    records = await _fetch(conn, _SESSIONS_WITH_USERS, list(session_ids))
    return {record["id"]: SessionWithUser(**record) for record in records}


def _text(value: object) -> str | None:
    """An inet column as text (asyncpg returns ipaddress objects)."""
    return None if value is None else str(value)


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
    return [LiveSession(**{**row._mapping, "ip": _text(row.ip)}) for row in rows]


async def live_session_ids_oldest_first(
    conn: AsyncConnection, user_id: uuid.UUID, now: datetime, idle_ttl: int
) -> list[uuid.UUID]:
    statement = (
        select(session.c.id)
        .where(session.c.user_id == user_id, live_clause(now, idle_ttl))
        .order_by(session.c.last_used_at, session.c.id)
    )
    return list((await conn.execute(statement)).scalars())


def _revocation_time(now: datetime) -> Any:
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


# --- refresh tokens --------------------------------------------------------------------------


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
        .with_for_update(of=[refresh_token, session])
    )
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
    records = await _fetch(conn, _ROTATE, *rotate_arguments(asks, now, idle_ttl))
    return {record["id"]: Rotation(**record) for record in records}


def rotate_arguments(
    asks: Sequence[RotationAsk], now: datetime, idle_ttl: timedelta
) -> list[object]:
    """_ROTATE's parameters: one array per RotationAsk field (for unnest), then now and idle_ttl."""
    columns = [[ask[i] for ask in asks] for i in range(len(RotationAsk._fields))]
    return [*columns, now, idle_ttl]


async def find_child(conn: AsyncConnection, parent_id: uuid.UUID) -> Record | None:
    statement = select(
        refresh_token.c.id, refresh_token.c.expires_at, refresh_token.c.spent_at
    ).where(refresh_token.c.parent_id == parent_id)
    return (await conn.execute(statement)).first()


async def find_refresh_token_session(conn: AsyncConnection, token_id: uuid.UUID) -> Record | None:
    statement = (
        select(refresh_token.c.verifier, session.c.id.label("session_id"), session.c.user_id)
        .join(session, session.c.id == refresh_token.c.session_id)
        .where(refresh_token.c.id == token_id)
    )
    return (await conn.execute(statement)).first()


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


# --- login throttling ------------------------------------------------------------------------


async def failure_counts(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> Sequence[Record]:
    conditions = [
        and_(login_failure.c.kind == kind, login_failure.c.key == key) for kind, key in keys
    ]
    statement = select(login_failure).where(or_(*conditions))
    return (await conn.execute(statement)).all()


async def record_failure(
    conn: AsyncConnection, kind: str, key: str, now: datetime, window: int
) -> None:
    """Count one failure in the key's current window, or start a new window if it has passed."""
    window_over = login_failure.c.window_start <= now - timedelta(seconds=window)
    statement = pg_insert(login_failure).values(kind=kind, key=key, window_start=now, failures=1)
    statement = statement.on_conflict_do_update(
        index_elements=[login_failure.c.kind, login_failure.c.key],
        set_={
            "window_start": case((window_over, now), else_=login_failure.c.window_start),
            "failures": case((window_over, 1), else_=login_failure.c.failures + 1),
        },
    )
    await conn.execute(statement)


async def clear_failures(conn: AsyncConnection, kind: str, key: str) -> None:
    await conn.execute(
        delete(login_failure).where(login_failure.c.kind == kind, login_failure.c.key == key)
    )


# --- bulk import (rotor import-users) --------------------------------------------------------


async def insert_users_skipping_existing(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert many users in one statement; those whose email is taken (case-insensitively) are
    left out, never overwritten. Returns how many were inserted. Each row has the keys id,
    email, password_hash, created_at and updated_at."""
    statement = text(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS text[]),"
        " CAST(:canonicals AS text[]), CAST(:hashes AS text[]),"
        " CAST(:created AS timestamptz[]), CAST(:updated AS timestamptz[]))"
        " AS new (id, email, email_canonical, password_hash, created_at, updated_at)"
        ' WHERE NOT EXISTS (SELECT 1 FROM "user" AS old'
        " WHERE old.email_canonical = new.email_canonical AND old.email_collision)"
        " ON CONFLICT DO NOTHING"
    )
    result = await conn.execute(statement, _columns(rows))
    return result.rowcount


async def count_existing_emails(conn: AsyncConnection, emails: Sequence[str]) -> int:
    """How many of `emails` are already registered, compared as the unique index does."""
    statement = text(
        'SELECT count(*) FROM "user" WHERE email_canonical = ANY(CAST(:forms AS text[]))'
    )
    forms = list({lenient_canonical(email) for email in emails})
    return int((await conn.execute(statement, {"forms": forms})).scalar_one())


def _columns(rows: Sequence[dict[str, Any]]) -> dict[str, list[Any]]:
    # One array per column: a single statement per batch, whatever its size.
    return {
        "ids": [row["id"] for row in rows],
        "emails": [row["email"] for row in rows],
        "canonicals": [lenient_canonical(row["email"]) for row in rows],
        "hashes": [row["password_hash"] for row in rows],
        "created": [row["created_at"] for row in rows],
        "updated": [row["updated_at"] for row in rows],
    }


# --- audit trail -----------------------------------------------------------------------------


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
        }
        for session_id in session_ids
    ]
    if rows:
        await conn.execute(insert(auth_event), rows)


async def list_auth_events(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> Sequence[Record]:
    """The user's events, newest first, strictly after the `before` position (a page's last
    (created_at, id)); a backward scan of ix_auth_event_user_id_created_at_id."""
    conditions = [auth_event.c.user_id == user_id]
    if before is not None:
        conditions.append(tuple_(auth_event.c.created_at, auth_event.c.id) < tuple_(*before))
    statement = (
        select(auth_event)
        .where(*conditions)
        .order_by(auth_event.c.created_at.desc(), auth_event.c.id.desc())
        .limit(limit)
    )
    return (await conn.execute(statement)).all()


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
