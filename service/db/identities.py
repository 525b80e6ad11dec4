"""Statements of sign-in with an identity provider: identities, password-less users, and the
one-time use of ID tokens. Like every query module they never commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import users
from service.db.models import id_token_use, identity


class IdentityRow(NamedTuple):
    provider: str
    subject: str
    user_id: uuid.UUID
    email: str | None
    created_at: datetime
    last_used_at: datetime


async def spend_id_token(conn: AsyncConnection, digest: bytes, expires_at: datetime) -> bool:
    """Record the ID token as used; False when it already was (a replay).

    A concurrent transaction spending the same token makes this wait for it on the primary key:
    then exactly one of them sees True, whichever process it runs in.
    """
    statement = (
        pg_insert(id_token_use)
        .values(digest=digest, expires_at=expires_at)
        .on_conflict_do_nothing()
        .returning(id_token_use.c.digest)
    )
    return (await conn.execute(statement)).first() is not None


async def find_identity(conn: AsyncConnection, provider: str, subject: str) -> IdentityRow | None:
    statement = select(*(identity.c[name] for name in IdentityRow._fields)).where(
        identity.c.provider == provider, identity.c.subject == subject
    )
    found = (await conn.execute(statement)).first()
    return None if found is None else IdentityRow(**found._mapping)


async def touch_identity(
    conn: AsyncConnection, provider: str, subject: str, email: str | None, now: datetime
) -> None:
    """Note a sign-in; keep the email seen last (a later token may omit it)."""
    values: dict[str, Any] = {"last_used_at": now}
    if email is not None:
        values["email"] = email
    statement = (
        update(identity)
        .where(identity.c.provider == provider, identity.c.subject == subject)
        .values(**values)
    )
    await conn.execute(statement)


async def insert_identity(
    conn: AsyncConnection,
    *,
    provider: str,
    subject: str,
    user_id: uuid.UUID,
    email: str | None,
    now: datetime,
) -> bool:
    """Link (provider, subject) to the user; False when the identity, or an identity of that
    provider for that user, exists already."""
    statement = (
        pg_insert(identity)
        .values(
            provider=provider,
            subject=subject,
            user_id=user_id,
            email=email,
            created_at=now,
            last_used_at=now,
        )
        .on_conflict_do_nothing()
        .returning(identity.c.subject)
    )
    return (await conn.execute(statement)).first() is not None


async def list_identities(conn: AsyncConnection, user_id: uuid.UUID) -> list[IdentityRow]:
    statement = (
        select(*(identity.c[name] for name in IdentityRow._fields))
        .where(identity.c.user_id == user_id)
        .order_by(identity.c.created_at, identity.c.provider)
    )
    return [IdentityRow(**row._mapping) for row in await conn.execute(statement)]


async def delete_identity(conn: AsyncConnection, user_id: uuid.UUID, provider: str) -> bool:
    statement = (
        delete(identity)
        .where(identity.c.user_id == user_id, identity.c.provider == provider)
        .returning(identity.c.subject)
    )
    return (await conn.execute(statement)).first() is not None


async def insert_passwordless_user(
    conn: AsyncConnection, user_id: uuid.UUID, email: str, now: datetime
) -> bool:
    """A verified account with no password; False when the address is taken."""
    return await users.insert_user(conn, user_id, email, None, now, email_verified_at=now)


async def insert_imported_identities(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]], now: datetime
) -> int:
    """Identities of imported users (keys provider, subject, user_id), in one statement. Only
    users that exist get theirs: a row whose user was skipped (its email was taken) links
    nothing, so an import never attaches an identity to an account it did not create. An
    identity linked already is left alone. Returns how many were inserted."""
    if not rows:
        return 0
    statement = text(
        "INSERT INTO identity (provider, subject, user_id, email, created_at, last_used_at)"
        " SELECT i.provider, i.subject, i.user_id, NULL, :now, :now"
        " FROM unnest(CAST(:providers AS text[]), CAST(:subjects AS text[]),"
        " CAST(:users AS uuid[])) AS i(provider, subject, user_id)"
        ' JOIN "user" u ON u.id = i.user_id'
        " ON CONFLICT DO NOTHING"
    )
    result = await conn.execute(
        statement,
        {
            "providers": [row["provider"] for row in rows],
            "subjects": [row["subject"] for row in rows],
            "users": [row["user_id"] for row in rows],
            "now": now,
        },
    )
    return int(result.rowcount)
