"""Rows written straight into the database, for the tests of single statements."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg


async def insert_session(
    db: asyncpg.Connection,
    *,
    now: datetime,
    session_end: datetime,
    user_id: uuid.UUID | None = None,
) -> tuple[uuid.UUID, uuid.UUID]:
    """A session started `now` (of a new user unless `user_id` is given): (session id, user id)."""
    if user_id is None:
        user_id = uuid.uuid4()
        await db.execute(
            'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
            " VALUES ($1, $2, lower($2), 'x', $3, $3)",
            user_id,
            f"{user_id}@example.com",
            now,
        )
    session_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO session (id, user_id, created_at, last_used_at, expires_at) "
        "VALUES ($1, $2, $3, $3, $4)",
        session_id,
        user_id,
        now,
        session_end,
    )
    return session_id, user_id
