"""Reads of the OAuth endpoints that no other flow makes: a refresh token's state for
introspection (RFC 7662). Never commits; the caller owns the connection."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import refresh_token, session, user


class RefreshTokenState(NamedTuple):
    verifier: bytes
    expires_at: datetime
    spent_at: datetime | None
    session_id: uuid.UUID
    user_id: uuid.UUID
    last_used_at: datetime
    session_expires_at: datetime
    revoked_at: datetime | None
    disabled_at: datetime | None


async def find_refresh_token_state(
    conn: AsyncConnection, token_id: uuid.UUID
) -> RefreshTokenState | None:
    """The token with its session and user, by primary key, without locking anything."""
    statement = (
        select(
            refresh_token.c.verifier,
            refresh_token.c.expires_at,
            refresh_token.c.spent_at,
            session.c.id.label("session_id"),
            session.c.user_id,
            session.c.last_used_at,
            session.c.expires_at.label("session_expires_at"),
            session.c.revoked_at,
            user.c.disabled_at,
        )
        .join(session, session.c.id == refresh_token.c.session_id)
        .join(user, user.c.id == session.c.user_id)
        .where(refresh_token.c.id == token_id)
    )
    found = (await conn.execute(statement)).first()
    return None if found is None else RefreshTokenState(**found._mapping)
