"""Shared by the console tests: staff accounts straight into the database, form tokens."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import asyncpg

from service.domain.passwords import hash_password_sync

STAFF_PASSWORD = "staff password 123"
_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


async def add_staff(db: asyncpg.Connection, email: str, role: str) -> uuid.UUID:
    staff_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO staff (id, email, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        staff_id,
        email,
        hash_password_sync(STAFF_PASSWORD, 4),
        role,
        datetime.now(UTC),
    )
    return staff_id


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, html
    return match.group(1)
