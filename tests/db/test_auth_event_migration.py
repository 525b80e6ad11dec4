"""Migration 0002 (auth_event): reversible, and the same schema as service/db/models.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from service.db.engine import async_url
from service.db.models import metadata
from service.migrate import downgrade, upgrade


def _inspect(url: str, look: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(look)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _drift(sync_conn: Any) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(sync_conn), metadata))


def test_models_and_migrations_agree(create_database: Callable[[], str]) -> None:
    url = create_database()
    upgrade(url)
    assert _inspect(url, _drift) == []


def test_0002_downgrades_and_upgrades_again(create_database: Callable[[], str]) -> None:
    url = create_database()
    upgrade(url)
    downgrade(url, "0001")
    tables = _inspect(url, lambda conn: inspect(conn).get_table_names())
    assert "auth_event" not in tables
    assert "user" in tables
    upgrade(url)
    indexes = _inspect(url, lambda conn: inspect(conn).get_indexes("auth_event"))
    assert {index["name"]: index["column_names"] for index in indexes} == {
        "ix_auth_event_created_at": ["created_at"],
        "ix_auth_event_user_id_created_at_id": ["user_id", "created_at", "id"],
    }
