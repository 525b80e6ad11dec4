"""Migration 0002 (auth_event): reversible, and the same schema as service/db/models.py."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import create_async_engine

from service.db import events
from service.db.engine import async_url
from service.db.models import metadata
from service.ops.migrate import downgrade, upgrade


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


def _plan(url: str, statement: Any) -> str:
    """EXPLAIN of the very statement the code runs, with sequential scans discouraged (the test
    table is tiny, so the planner would otherwise always scan it)."""
    sql = str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )

    async def run() -> str:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as conn:
                await conn.execute(text("SET enable_seqscan = off"))
                rows = (await conn.execute(text(f"EXPLAIN {sql}"))).scalars()
                return "\n".join(rows)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_event_reads_and_pruning_use_their_indexes(
    create_database: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = create_database()
    upgrade(url)
    captured: list[Any] = []

    class Capture:
        async def execute(self, statement: Any, *args: Any) -> Any:
            captured.append(statement)
            raise _Stop

    now = datetime(2026, 11, 27, tzinfo=UTC)
    position = (now, uuid.uuid4())
    for call in (
        events.list_auth_events(Capture(), uuid.uuid4(), 21, position),  # type: ignore[arg-type]
        events.prune_auth_events(Capture(), now, 1000),  # type: ignore[arg-type]
    ):
        with pytest.raises(_Stop):
            asyncio.run(call)
    read, prune = (_plan(url, statement) for statement in captured)
    assert "ix_auth_event_user_id_created_at_id" in read
    assert "Sort" not in read  # the index order is the page order
    assert "ix_auth_event_created_at" in prune
    assert "Seq Scan" not in read + prune


class _Stop(Exception):
    pass
