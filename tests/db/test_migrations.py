"""Migrations: empty -> head -> base -> head, and no drift between models and migrations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.engine import async_url
from service.db.models import metadata
from service.ops.migrate import downgrade, head_revision, upgrade


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row["tablename"] for row in rows}
    finally:
        await conn.close()


async def _drift(url: str) -> list[object]:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()


def test_upgrade_downgrade_upgrade(create_database: Callable[[], str]) -> None:
    url = create_database()
    upgrade(url)
    tables = asyncio.run(_tables(url))
    assert {"user", "session", "refresh_token", "login_failure", "alembic_version"} <= tables
    downgrade(url, "base")
    assert asyncio.run(_tables(url)) == {"alembic_version"}
    upgrade(url)
    assert asyncio.run(_tables(url)) == tables
    assert head_revision() is not None


def test_models_and_migrations_describe_the_same_schema(database_url: str) -> None:
    assert asyncio.run(_drift(database_url)) == []
