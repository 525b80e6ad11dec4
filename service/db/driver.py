"""Plain SQL on the pooled connection's asyncpg connection, for the statements of the hot paths.

SQLAlchemy's statement building, execution context and result objects cost more CPU than the rest
of those requests' Python (docs/performance.md); the connection still comes from, and goes back
to, the engine's pool. asyncpg ships no type hints, so its records are typed as mappings here and
turned into named rows by the query modules before they leave this layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db import failover


async def on_driver(
    conn: AsyncConnection, run: Callable[[asyncpg.Connection], Awaitable[Any]]
) -> Any:
    """One statement on the pooled connection's asyncpg connection (its prepared-statement cache
    makes this one round trip). A failure that may have left the connection in an unknown state
    (lost socket, timeout, cancellation) invalidates it, so the pool replaces it."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out pool connection always has one
    try:
        return await run(driver)
    except asyncpg.PostgresError as exc:
        # A failover's errors too (a demoted primary refusing writes): the next checkout
        # connects again, to the node that takes writes now.
        if isinstance(exc, asyncpg.PostgresConnectionError) or failover.is_failover_error(exc):
            await conn.invalidate()
        raise
    except BaseException:
        await conn.invalidate()
        raise


async def fetchrow(conn: AsyncConnection, sql: str, *args: object) -> Mapping[str, Any] | None:
    record: Mapping[str, Any] | None = await on_driver(
        conn, lambda driver: driver.fetchrow(sql, *args)
    )
    return record


async def fetch(conn: AsyncConnection, sql: str, *args: object) -> list[Mapping[str, Any]]:
    records: list[Mapping[str, Any]] = await on_driver(
        conn, lambda driver: driver.fetch(sql, *args)
    )
    return records


def text_of(value: object) -> str | None:
    """An inet column as text (asyncpg returns ipaddress objects)."""
    return None if value is None else str(value)
