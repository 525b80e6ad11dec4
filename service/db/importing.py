"""Statements of the bulk user import (rotor import-users).

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from service.domain.emails import lenient_canonical


async def insert_users_skipping_existing(
    conn: AsyncConnection, rows: Sequence[dict[str, Any]]
) -> int:
    """Insert many users in one statement; those whose email is taken (case-insensitively) are
    left out, never overwritten. Returns how many were inserted. Each row has the keys id,
    email, password_hash, created_at, updated_at and email_verified_at."""
    statement = text(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at,'
        " email_verified_at)"
        " SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:emails AS text[]),"
        " CAST(:canonicals AS text[]), CAST(:hashes AS text[]),"
        " CAST(:created AS timestamptz[]), CAST(:updated AS timestamptz[]),"
        " CAST(:verified AS timestamptz[]))"
        " AS new (id, email, email_canonical, password_hash, created_at, updated_at,"
        " email_verified_at)"
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
        "verified": [row.get("email_verified_at") for row in rows],
    }
