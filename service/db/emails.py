"""Accounts whose addresses collided when the canonical email rule came (migration 0007)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import user


class CollidingUser(NamedTuple):
    id: uuid.UUID
    email: str
    email_canonical: str
    created_at: datetime


async def colliding_users(conn: AsyncConnection) -> list[CollidingUser]:
    """Every flagged account (id, email, email_canonical, created_at), grouped by canonical
    form, oldest first (index ix_user_email_canonical_collision)."""
    statement = (
        select(user.c.id, user.c.email, user.c.email_canonical, user.c.created_at)
        .where(user.c.email_collision)
        .order_by(user.c.email_canonical, user.c.created_at, user.c.id)
    )
    return [CollidingUser(**row._mapping) for row in await conn.execute(statement)]


async def owner_of(conn: AsyncConnection, canonical: str) -> uuid.UUID | None:
    """The account that owns `canonical` (unflagged), if one does."""
    statement = select(user.c.id).where(
        user.c.email_canonical == canonical, ~user.c.email_collision
    )
    found: uuid.UUID | None = (await conn.execute(statement)).scalar()
    return found


async def make_owner(conn: AsyncConnection, user_id: uuid.UUID) -> str | None:
    """Unflag `user_id`: its canonical form is then its own (the unique index holds it). The
    canonical form, or None when the account is not flagged."""
    statement = (
        update(user)
        .where(user.c.id == user_id, user.c.email_collision)
        .values(email_collision=False)
        .returning(user.c.email_canonical)
    )
    form: str | None = (await conn.execute(statement)).scalar()
    return form
