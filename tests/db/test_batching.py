"""Batcher, with the session read of protected routes: concurrent asks share one statement,
each asker still gets exactly its own answer, a statement never predates an ask it answers,
and a failed statement fails only its own batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from rows import insert_session
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import sessions as session_queries
from service.db.batching import Batcher
from service.db.engine import create_engine

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str, db: asyncpg.Connection) -> AsyncIterator[AsyncEngine]:
    # One pooled connection: while the test holds it, every ask waits in one open batch.
    engine = create_engine(Settings(db_pool_size=1), database_url)
    try:
        yield engine.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


SessionReads = Batcher[uuid.UUID, None, session_queries.SessionWithUser]


def session_reads(engine: AsyncEngine, max_batch: int = 256) -> SessionReads:
    async def read(conn: Any, asks: Any) -> Any:
        return await session_queries.find_sessions_with_users(conn, list(asks))

    return Batcher(engine, read, max_batch)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[list[uuid.UUID]]:
    """The session ids of every batch statement run, in order."""
    seen: list[list[uuid.UUID]] = []
    original = session_queries.find_sessions_with_users

    async def spy(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        seen.append(list(session_ids))
        return await original(conn, session_ids)

    monkeypatch.setattr(session_queries, "find_sessions_with_users", spy)
    return seen


async def seed_session(
    db: asyncpg.Connection, user_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A user (new unless given) and one session of theirs: (session id, user id)."""
    return await insert_session(db, now=NOW, session_end=NOW + timedelta(days=30), user_id=user_id)


async def settle() -> None:
    """Let every ready task run until it blocks (on the held connection or a future)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_concurrent_asks_share_one_statement_and_each_gets_its_own_row(
    engine: AsyncEngine, db: asyncpg.Connection, statements: list[list[uuid.UUID]]
) -> None:
    sessions = [await seed_session(db) for _ in range(10)]
    sessions.append(await seed_session(db, sessions[0][1]))  # a second session of one user
    unknown = uuid.uuid4()
    reads = session_reads(engine)
    async with engine.connect() as held:
        await held.get_raw_connection()  # the pool's only connection is taken
        pending = [asyncio.ensure_future(reads.ask(s, None)) for s, _ in sessions]
        pending.append(asyncio.ensure_future(reads.ask(unknown, None)))
        await settle()
        assert statements == []  # everyone is waiting for the connection, in one batch
    rows = await asyncio.gather(*pending)

    assert len(statements) == 1
    assert sorted(statements[0]) == sorted([s for s, _ in sessions] + [unknown])
    for (session_id, user_id), row in zip(sessions, rows, strict=False):
        assert row is not None
        assert (row.id, row.user_id, row.email) == (session_id, user_id, f"{user_id}@example.com")
    assert rows[-1] is None


async def test_a_key_already_waiting_opens_the_next_batch(
    engine: AsyncEngine, db: asyncpg.Connection, statements: list[list[uuid.UUID]]
) -> None:
    """Each asker gets an answer computed for its own ask (a refresh's own child token)."""
    (session_id, _), (other_id, _) = await seed_session(db), await seed_session(db)
    reads = session_reads(engine)
    async with engine.connect() as held:
        await held.get_raw_connection()
        pending = [
            asyncio.ensure_future(reads.ask(key, None))
            for key in (session_id, session_id, other_id)
        ]
        await settle()
    rows = await asyncio.gather(*pending)
    assert sorted(statements, key=len) == [[session_id], [session_id, other_id]]
    assert [row.id if row else None for row in rows] == [session_id, session_id, other_id]


async def test_an_ask_after_the_read_started_waits_for_the_next_read(
    engine: AsyncEngine,
    db: asyncpg.Connection,
    statements: list[list[uuid.UUID]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A revocation committed before a request asked is never hidden by a read already running."""
    session_id, _ = await seed_session(db)
    spy = session_queries.find_sessions_with_users
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def slow(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        rows = await spy(conn, session_ids)  # read...
        reading.set()
        await go_on.wait()  # ...but answer only after the revocation below
        return rows

    monkeypatch.setattr(session_queries, "find_sessions_with_users", slow)
    reads = session_reads(engine)
    first = asyncio.ensure_future(reads.ask(session_id, None))
    await reading.wait()
    await db.execute("UPDATE session SET revoked_at = $1 WHERE id = $2", NOW, session_id)
    second = asyncio.ensure_future(reads.ask(session_id, None))
    await settle()
    go_on.set()
    before, after = await first, await second

    assert len(statements) == 2
    assert before is not None and before.revoked_at is None
    assert after is not None and after.revoked_at == NOW


async def test_a_failed_read_fails_its_batch_and_the_next_ask_reads_again(
    engine: AsyncEngine,
    db: asyncpg.Connection,
    statements: list[list[uuid.UUID]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sessions = [await seed_session(db) for _ in range(3)]
    spy = session_queries.find_sessions_with_users
    failures = [asyncpg.ConnectionDoesNotExistError("connection lost")]

    async def failing_once(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        if failures:
            await spy(conn, session_ids)
            raise failures.pop()
        return await spy(conn, session_ids)

    monkeypatch.setattr(session_queries, "find_sessions_with_users", failing_once)
    reads = session_reads(engine)
    results = await asyncio.gather(
        *(reads.ask(session_id, None) for session_id, _ in sessions), return_exceptions=True
    )
    assert [type(result) for result in results] == [asyncpg.ConnectionDoesNotExistError] * 3

    row = await reads.ask(sessions[0][0], None)
    assert row is not None and row.id == sessions[0][0]
    assert len(statements) == 2


async def test_a_cancelled_asker_does_not_cancel_the_others(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    (leaving_id, _), (staying_id, _) = await seed_session(db), await seed_session(db)
    reads = session_reads(engine)
    async with engine.connect() as held:
        await held.get_raw_connection()
        leaving = asyncio.ensure_future(reads.ask(leaving_id, None))
        staying = asyncio.ensure_future(reads.ask(staying_id, None))
        await settle()
        leaving.cancel()
        await settle()
    row = await staying
    assert leaving.cancelled()
    assert row is not None and row.id == staying_id


async def test_batches_are_bounded(
    engine: AsyncEngine, db: asyncpg.Connection, statements: list[list[uuid.UUID]]
) -> None:
    asks = [await seed_session(db) for _ in range(7)]
    reads = session_reads(engine, max_batch=3)
    async with engine.connect() as held:
        await held.get_raw_connection()
        pending = [asyncio.ensure_future(reads.ask(s, None)) for s, _ in asks]
        await settle()
    rows = await asyncio.gather(*pending)
    assert sorted(len(batch) for batch in statements) == [1, 3, 3]
    assert [row.id if row else None for row in rows] == [s for s, _ in asks]
