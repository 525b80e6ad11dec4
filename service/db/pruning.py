"""The pruning statements: each deletes one bounded batch of dead rows and says how many went.

Every batch claims its rows with `FOR UPDATE SKIP LOCKED`, so several pruning processes never
wait on each other, and a row that a request holds (a refresh locks its session) is left for the
next run. Like every query module they never commit: service/flows/pruning.py runs each batch
in its own short transaction. Refresh tokens are never deleted on their own: they go with their
session (ON DELETE CASCADE), so reuse detection keeps every spent token of a session while it
can matter.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, any_, delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import (
    id_token_use,
    login_failure,
    one_time_code,
    outbox_message,
    refresh_token,
    session,
)

# The smallest UUID: where the keyset scan over session ids starts.
FIRST_ID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Deleted:
    sessions: int
    refresh_tokens: int


async def _delete_sessions(
    conn: AsyncConnection, condition: ColumnElement[bool], limit: int
) -> Deleted:
    """Delete at most `limit` unlocked sessions matching `condition`, with their tokens.

    One statement: claim the rows, count their tokens (the CTEs share one snapshot, so the count
    is taken before the cascade), delete the sessions.
    """
    doomed = (
        select(session.c.id)
        .where(condition)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("doomed")
    )
    tokens = (
        select(func.count().label("n"))
        .where(refresh_token.c.session_id.in_(select(doomed.c.id)))
        .cte("tokens")
    )
    gone = (
        delete(session)
        .where(session.c.id.in_(select(doomed.c.id)))
        .returning(session.c.id)
        .cte("gone")
    )
    statement = select(
        select(func.count()).select_from(gone).scalar_subquery(),
        select(tokens.c.n).scalar_subquery(),
    )
    row = (await conn.execute(statement)).one()
    return Deleted(sessions=row[0], refresh_tokens=row[1])


async def delete_past_absolute_end(conn: AsyncConnection, now: datetime, limit: int) -> Deleted:
    """Sessions past their absolute end (index ix_session_expires_at)."""
    return await _delete_sessions(conn, session.c.expires_at <= now, limit)


async def delete_revoked(conn: AsyncConnection, idle_cutoff: datetime, limit: int) -> Deleted:
    """Revoked sessions whose every token has expired too (partial index ix_session_revoked_at).

    A token never outlives last_used_at + idle TTL (every issue touches last_used_at), so once
    that has passed the session's tokens are as dead as the session. Keeping a revoked session
    until then keeps logout by one of its unexpired refresh tokens an idempotent 204
    (docs/reference/routes.md).
    """
    condition = (
        session.c.revoked_at.is_not(None)
        & (session.c.revoked_at <= idle_cutoff)
        & (session.c.last_used_at <= idle_cutoff)
    )
    return await _delete_sessions(conn, condition, limit)


async def next_scan_end(conn: AsyncConnection, after: uuid.UUID, limit: int) -> uuid.UUID | None:
    """The id `limit` sessions after `after` (or the last one): the end of the next scan window.

    No index leads with last_used_at, so idle sessions are found by walking the primary key in
    windows of `limit` rows; each window is one bounded index range scan.
    """
    window = (
        select(session.c.id).where(session.c.id > after).order_by(session.c.id).limit(limit)
    ).subquery()
    # ORDER BY ... LIMIT 1, not max(): PostgreSQL before 16 has no max(uuid).
    last = select(window.c.id).order_by(window.c.id.desc()).limit(1)
    end: uuid.UUID | None = (await conn.execute(last)).scalar_one_or_none()
    return end


async def delete_idle_in_window(
    conn: AsyncConnection, after: uuid.UUID, until: uuid.UUID, idle_cutoff: datetime, limit: int
) -> Deleted:
    """Sessions with ids in (after, until] not refreshed since `idle_cutoff`."""
    condition = (
        (session.c.id > after) & (session.c.id <= until) & (session.c.last_used_at <= idle_cutoff)
    )
    return await _delete_sessions(conn, condition, limit)


async def delete_stale_login_failures(
    conn: AsyncConnection, window_cutoff: datetime, limit: int
) -> int:
    """Throttle counters whose window is over (index ix_login_failure_window_start).

    record_failure() would restart such a row at 1 anyway, and the throttle check ignores it, so
    deleting it changes no answer.
    """
    # By ctid: the claimed rows are locked, so their physical address cannot change before the
    # DELETE, which then needs no join (a join on (kind, key) was planned as a full scan).
    ctid: ColumnElement[Any] = literal_column("ctid")
    doomed = (
        select(ctid)
        .select_from(login_failure)
        .where(login_failure.c.window_start <= window_cutoff)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        delete(login_failure)
        .where(ctid == any_(func.array(doomed.scalar_subquery())))
        .returning(login_failure.c.kind)
    )
    return len((await conn.execute(statement)).all())


async def delete_expired_codes(conn: AsyncConnection, now: datetime, limit: int) -> int:
    """One-time codes past their end (index ix_one_time_code_expires_at): no check accepts them."""
    doomed = (
        select(one_time_code.c.id)
        .where(one_time_code.c.expires_at <= now)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        delete(one_time_code)
        .where(one_time_code.c.id.in_(doomed.scalar_subquery()))
        .returning(one_time_code.c.id)
    )
    return len((await conn.execute(statement)).all())


async def delete_old_messages(conn: AsyncConnection, cutoff: datetime, limit: int) -> int:
    """Delivered or failed messages older than `cutoff` (partial indexes on sent_at and
    failed_at); a pending one always stays."""
    finished: list[ColumnElement[bool]] = [
        outbox_message.c.sent_at <= cutoff,
        outbox_message.c.failed_at <= cutoff,
    ]
    deleted = 0
    for condition in finished:
        doomed = (
            select(outbox_message.c.id)
            .where(condition)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        statement = (
            delete(outbox_message)
            .where(outbox_message.c.id.in_(doomed.scalar_subquery()))
            .returning(outbox_message.c.id)
        )
        deleted += len((await conn.execute(statement)).all())
    return deleted


async def delete_spent_id_tokens(conn: AsyncConnection, before: datetime, limit: int) -> int:
    """One-time-use rows of ID tokens that expired before `before` (index
    ix_id_token_use_expires_at): such a token fails its `exp` check anyway, so a replay of it
    is refused whether its row exists or not."""
    doomed = (
        select(id_token_use.c.digest)
        .where(id_token_use.c.expires_at < before)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    result = await conn.execute(delete(id_token_use).where(id_token_use.c.digest.in_(doomed)))
    return int(result.rowcount)
