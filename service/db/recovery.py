"""Queries of account recovery and email verification: one-time codes and send counters.

The writes that forgot/resend make are conditional in SQL (`INSERT ... SELECT ... WHERE
:eligible`), so an unknown, disabled or already-verified address runs exactly the statements a
known one runs: the database work tells nothing. Like every query module they never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Boolean, bindparam, case, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import login_failure, one_time_code, user


class CodeRow(NamedTuple):
    id: uuid.UUID
    user_id: uuid.UUID
    purpose: str
    digest: bytes
    attempts: int
    created_at: datetime
    expires_at: datetime


class Counted(NamedTuple):
    sends: int
    window_start: datetime


async def count_send(
    conn: AsyncConnection, kind: str, key: str, now: datetime, window: int
) -> Counted:
    """Count one more in the key's current window (or start a new one); the count after it."""
    window_over = login_failure.c.window_start <= now - timedelta(seconds=window)
    statement = pg_insert(login_failure).values(kind=kind, key=key, window_start=now, failures=1)
    upsert = statement.on_conflict_do_update(
        index_elements=[login_failure.c.kind, login_failure.c.key],
        set_={
            "window_start": case((window_over, now), else_=login_failure.c.window_start),
            "failures": case((window_over, 1), else_=login_failure.c.failures + 1),
        },
    ).returning(login_failure.c.failures, login_failure.c.window_start)
    row = (await conn.execute(upsert)).one()
    return Counted(row.failures, row.window_start)


async def delete_codes(conn: AsyncConnection, user_id: uuid.UUID, purpose: str) -> None:
    """Kill the user's codes of this purpose (a newer code replaces them, or one was used)."""
    await conn.execute(
        delete(one_time_code).where(
            one_time_code.c.user_id == user_id, one_time_code.c.purpose == purpose
        )
    )


def insert_if(eligible: bool, values: dict[str, Any], table: Any) -> Any:
    """INSERT INTO table (...) SELECT <values> WHERE :eligible."""
    columns = list(values)
    selected = select(*(literal(values[name], table.c[name].type) for name in columns)).where(
        bindparam("eligible", eligible, type_=Boolean)
    )
    return insert(table).from_select(columns, selected)


async def insert_code_if(
    conn: AsyncConnection,
    eligible: bool,
    *,
    code_id: uuid.UUID,
    user_id: uuid.UUID,
    purpose: str,
    digest: bytes,
    now: datetime,
    expires_at: datetime,
) -> None:
    values = {
        "id": code_id,
        "user_id": user_id,
        "purpose": purpose,
        "digest": digest,
        "attempts": 0,
        "created_at": now,
        "expires_at": expires_at,
    }
    await conn.execute(insert_if(eligible, values, one_time_code))


async def lock_live_code(
    conn: AsyncConnection, user_id: uuid.UUID, purpose: str, now: datetime
) -> CodeRow | None:
    """The user's newest unexpired code of this purpose, locked (one check at a time)."""
    statement = (
        select(one_time_code)
        .where(
            one_time_code.c.user_id == user_id,
            one_time_code.c.purpose == purpose,
            one_time_code.c.expires_at > now,
        )
        .order_by(one_time_code.c.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    found = (await conn.execute(statement)).first()
    return None if found is None else CodeRow(**found._mapping)


async def count_wrong_try(conn: AsyncConnection, code_id: uuid.UUID) -> int:
    statement = (
        update(one_time_code)
        .where(one_time_code.c.id == code_id)
        .values(attempts=one_time_code.c.attempts + 1)
        .returning(one_time_code.c.attempts)
    )
    attempts: int = (await conn.execute(statement)).scalar_one()
    return attempts


async def delete_code(conn: AsyncConnection, code_id: uuid.UUID) -> None:
    await conn.execute(delete(one_time_code).where(one_time_code.c.id == code_id))


async def mark_email_verified(conn: AsyncConnection, user_id: uuid.UUID, now: datetime) -> None:
    """Verified from now, unless it already was (the first proof's time is kept)."""
    statement = (
        update(user)
        .where(user.c.id == user_id)
        .values(email_verified_at=func.coalesce(user.c.email_verified_at, now), updated_at=now)
    )
    await conn.execute(statement)
