"""Statements on the login_failure table: the throttle's counters.

They never commit: the caller (a flow in service/flows/) owns the transaction. Timestamps
always come from the injected clock, never from the database's now(), so tests control time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import and_, case, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import login_failure


class FailureCount(NamedTuple):
    kind: str
    key: str
    window_start: datetime
    failures: int


async def failure_counts(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> list[FailureCount]:
    conditions = [
        and_(login_failure.c.kind == kind, login_failure.c.key == key) for kind, key in keys
    ]
    statement = select(*(login_failure.c[name] for name in FailureCount._fields)).where(
        or_(*conditions)
    )
    return [FailureCount(**row._mapping) for row in await conn.execute(statement)]


async def record_failure(
    conn: AsyncConnection, kind: str, key: str, now: datetime, window: int
) -> None:
    """Count one failure in the key's current window, or start a new window if it has passed."""
    window_over = login_failure.c.window_start <= now - timedelta(seconds=window)
    statement = pg_insert(login_failure).values(kind=kind, key=key, window_start=now, failures=1)
    statement = statement.on_conflict_do_update(
        index_elements=[login_failure.c.kind, login_failure.c.key],
        set_={
            "window_start": case((window_over, now), else_=login_failure.c.window_start),
            "failures": case((window_over, 1), else_=login_failure.c.failures + 1),
        },
    )
    await conn.execute(statement)


async def clear_failures(conn: AsyncConnection, kind: str, key: str) -> None:
    await conn.execute(
        delete(login_failure).where(login_failure.c.kind == kind, login_failure.c.key == key)
    )
