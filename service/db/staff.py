"""Queries of the support console's own tables: staff accounts and console sessions.
They never commit: the caller owns the transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Row, delete, exists, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import console_session, staff
from service.domain.console import Role


class StaffRow(NamedTuple):
    id: uuid.UUID
    email: str
    password_hash: str
    # The CHECK constraint admits only these.
    role: Role
    created_at: datetime


class ConsoleCallerRow(NamedTuple):
    """A live console session (id) and its staff member."""

    id: uuid.UUID
    staff_id: uuid.UUID
    email: str
    role: Role
    created_at: datetime


def _staff_row(found: Row[Any] | None) -> StaffRow | None:
    return None if found is None else StaffRow(**found._mapping)


async def insert_staff(
    conn: AsyncConnection,
    staff_id: uuid.UUID,
    email: str,
    password_hash: str,
    role: str,
    now: datetime,
) -> bool:
    """False (nothing written) when a staff member has this email (case-insensitively)."""
    statement = (
        pg_insert(staff)
        .values(id=staff_id, email=email, password_hash=password_hash, role=role, created_at=now)
        .on_conflict_do_nothing()
        .returning(staff.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def delete_staff(conn: AsyncConnection, email: str) -> bool:
    """Delete the staff member (their console sessions go with them); False when unknown."""
    statement = (
        delete(staff).where(func.lower(staff.c.email) == func.lower(email)).returning(staff.c.id)
    )
    return (await conn.execute(statement)).first() is not None


async def list_staff(conn: AsyncConnection) -> list[StaffRow]:
    rows = await conn.execute(select(staff).order_by(func.lower(staff.c.email)))
    return [StaffRow(**row._mapping) for row in rows]


async def any_staff(conn: AsyncConnection) -> bool:
    return bool((await conn.execute(select(exists().select_from(staff)))).scalar())


async def find_staff_by_email(conn: AsyncConnection, email: str) -> StaffRow | None:
    statement = select(staff).where(func.lower(staff.c.email) == func.lower(email))
    return _staff_row((await conn.execute(statement)).first())


async def staff_emails(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await conn.execute(select(staff.c.id, staff.c.email).where(staff.c.id.in_(ids)))
    return {row.id: row.email for row in rows}


async def insert_console_session(
    conn: AsyncConnection,
    *,
    session_id: uuid.UUID,
    token_hash: bytes,
    staff_id: uuid.UUID,
    ip: str | None,
    user_agent: str | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        insert(console_session).values(
            id=session_id,
            token_hash=token_hash,
            staff_id=staff_id,
            ip=ip,
            user_agent=user_agent,
            created_at=now,
            last_used_at=now,
            expires_at=expires_at,
        )
    )


async def touch_console_session(
    conn: AsyncConnection, token_hash: bytes, now: datetime, idle: timedelta
) -> ConsoleCallerRow | None:
    """Mark the live session with this token hash used now; its id and its staff member's
    id, email, role and created_at, or None when no live session has it."""
    statement = (
        update(console_session)
        .where(
            console_session.c.token_hash == token_hash,
            console_session.c.staff_id == staff.c.id,
            console_session.c.expires_at > now,
            console_session.c.last_used_at > now - idle,
        )
        .values(last_used_at=now)
        .returning(
            console_session.c.id,
            staff.c.id.label("staff_id"),
            staff.c.email,
            staff.c.role,
            staff.c.created_at,
        )
    )
    found = (await conn.execute(statement)).first()
    return None if found is None else ConsoleCallerRow(**found._mapping)


async def delete_console_session(conn: AsyncConnection, token_hash: bytes) -> None:
    await conn.execute(delete(console_session).where(console_session.c.token_hash == token_hash))


async def delete_ended_console_sessions(
    conn: AsyncConnection, staff_id: uuid.UUID, now: datetime, idle: timedelta
) -> None:
    """A staff member's ended sessions (housekeeping at each sign-in; they are few)."""
    await conn.execute(
        delete(console_session).where(
            console_session.c.staff_id == staff_id,
            or_(
                console_session.c.expires_at <= now,
                console_session.c.last_used_at <= now - idle,
            ),
        )
    )
