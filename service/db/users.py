"""Statements on the user table.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import user


async def insert_user(
    conn: AsyncConnection, user_id: uuid.UUID, email: str, password_hash: str, now: datetime
) -> bool:
    """Insert a user; False (and nothing written) when the email is taken."""
    statement = (
        pg_insert(user)
        .values(
            id=user_id, email=email, password_hash=password_hash, created_at=now, updated_at=now
        )
        .on_conflict_do_nothing()
        .returning(user.c.id)
    )
    return (await conn.execute(statement)).first() is not None


class UserRow(NamedTuple):
    """The one projection of a user row that the flows read."""

    id: uuid.UUID
    email: str
    # None: an account that signs in only with an identity provider (until a reset sets one).
    password_hash: str | None
    created_at: datetime
    updated_at: datetime
    disabled_at: datetime | None
    email_verified_at: datetime | None


_COLUMNS = [user.c[name] for name in UserRow._fields]


def _user_row(found: Row[Any] | None) -> UserRow | None:
    return None if found is None else UserRow(**found._mapping)


async def find_user_by_email(conn: AsyncConnection, email: str) -> UserRow | None:
    # lower() on both sides, in PostgreSQL: the unique index is on lower(email), and Python's
    # str.lower() differs from it for some letters (U+0130 becomes two code points in Python).
    statement = select(*_COLUMNS).where(func.lower(user.c.email) == func.lower(email))
    return _user_row((await conn.execute(statement)).first())


async def find_user(conn: AsyncConnection, user_id: uuid.UUID) -> UserRow | None:
    return _user_row((await conn.execute(select(*_COLUMNS).where(user.c.id == user_id))).first())


async def lock_user(conn: AsyncConnection, user_id: uuid.UUID) -> UserRow | None:
    """The user row, locked: serializes logins of one user (session cap) and password changes."""
    statement = select(*_COLUMNS).where(user.c.id == user_id).with_for_update()
    return _user_row((await conn.execute(statement)).first())


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


async def lock_user_by_email(conn: AsyncConnection, email: str) -> UserRow | None:
    """The user of `email` (compared as find_user_by_email does), locked."""
    statement = (
        select(*_COLUMNS).where(func.lower(user.c.email) == func.lower(email)).with_for_update()
    )
    return _user_row((await conn.execute(statement)).first())
