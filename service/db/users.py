"""Statements on the user table.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import CompoundSelect, Row, delete, func, select, text, union_all, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import user
from service.domain.emails import lenient_canonical


async def insert_user(
    conn: AsyncConnection,
    user_id: uuid.UUID,
    email: str,
    password_hash: str | None,
    now: datetime,
    *,
    email_verified_at: datetime | None = None,
) -> bool:
    """Insert a user; False (and nothing written) when the email is taken: its canonical form
    (service/domain/emails.py) belongs to an account, or to a group of look-alikes that predate
    the rule (those are outside the unique index, hence the NOT EXISTS)."""
    statement = text(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at,'
        " email_verified_at)"
        " SELECT :id, :email, :canonical, :hash, :now, :now, :verified"
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
        "verified": email_verified_at,
    }
    return (await conn.execute(statement, arguments)).first() is not None


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


def _by_email(email: str) -> CompoundSelect[Any]:
    """The account of `email`'s canonical form. An account of a look-alike group from before
    the rule is found by its exact address (lower() in PostgreSQL on both sides, as its old
    unique index compares), and wins over the group's resolved owner for that address."""
    form = lenient_canonical(email)
    colliding = select(*_COLUMNS).where(
        user.c.email_canonical == form,
        user.c.email_collision,
        func.lower(user.c.email) == func.lower(email),
    )
    owner = select(*_COLUMNS).where(user.c.email_canonical == form, ~user.c.email_collision)
    return union_all(colliding, owner).limit(1)


async def find_user_by_email(conn: AsyncConnection, email: str) -> UserRow | None:
    return _user_row((await conn.execute(_by_email(email))).first())


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
    # FOR UPDATE cannot lock a UNION: lock the row it names.
    found = _by_email(email).subquery()
    statement = (
        select(*_COLUMNS).where(user.c.id == select(found.c.id).scalar_subquery()).with_for_update()
    )
    return _user_row((await conn.execute(statement)).first())
