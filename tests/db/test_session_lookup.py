"""SessionLookup: concurrent session checks share one statement, each asker still gets exactly
its own answer, a read never predates the ask, and a failed read fails only its own batch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import queries
from service.db.engine import create_engine
from service.db.session_lookup import SessionLookup

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str, db: asyncpg.Connection) -> AsyncIterator[AsyncEngine]:
    # One pooled connection: while the test holds it, every ask waits in one open batch.
    engine = create_engine(Settings(db_pool_size=1), database_url)
    try:
        yield engine.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[list[uuid.UUID]]:
    """The session ids of every batch statement run, in order."""
    seen: list[list[uuid.UUID]] = []
    original = queries.find_sessions_with_users

    async def spy(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        seen.append(list(session_ids))
        return await original(conn, session_ids)

    monkeypatch.setattr(queries, "find_sessions_with_users", spy)
    return seen


async def seed_session(
    db: asyncpg.Connection, user_id: uuid.UUID | None = None
) -> tuple[uuid.UUID, uuid.UUID]:
    """A user (new unless given) and one session of theirs: (session id, user id)."""
    if user_id is None:
        user_id = uuid.uuid4()
        await db.execute(
            'INSERT INTO "user" (id, email, password_hash, created_at, updated_at) '
            "VALUES ($1, $2, 'x', $3, $3)",
            user_id,
            f"{user_id}@example.com",
            NOW,
        )
    session_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO session (id, user_id, created_at, last_used_at, expires_at) "
        "VALUES ($1, $2, $3, $3, $4)",
        session_id,
        user_id,
        NOW,
        NOW + timedelta(days=30),
    )
    return session_id, user_id


async def settle() -> None:
    """Let every ready task run until it blocks (on the held connection or a future)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_concurrent_asks_share_one_statement_and_each_gets_its_own_row(
    engine: AsyncEngine, db: asyncpg.Connection, statements: list[list[uuid.UUID]]
) -> None:
    users = [await seed_session(db) for _ in range(10)]
    second_session, owner = await seed_session(db, users[0][1])
    asks = [
        *users,  # each user's own session
        users[3],  # the same session asked twice
        (second_session, owner),
        (users[1][0], users[2][1]),  # another user's session: not theirs
        (uuid.uuid4(), users[4][1]),  # no such session
    ]
    lookup = SessionLookup(engine)
    async with engine.connect() as held:
        await held.get_raw_connection()  # the pool's only connection is taken
        pending = [asyncio.ensure_future(lookup.find(s, u)) for s, u in asks]
        await settle()
        assert statements == []  # everyone is waiting for the connection, in one batch
    rows = await asyncio.gather(*pending)

    assert len(statements) == 1
    assert set(statements[0]) == {session_id for session_id, _ in asks}
    assert len(statements[0]) == len(set(statements[0]))  # a session asked twice is read once
    for (session_id, user_id), row in zip(asks[:-2], rows[:-2], strict=True):
        assert row is not None
        assert (row.id, row.user_id, row.email) == (session_id, user_id, f"{user_id}@example.com")
    assert rows[-2] is None and rows[-1] is None


async def test_an_ask_after_the_read_started_waits_for_the_next_read(
    engine: AsyncEngine,
    db: asyncpg.Connection,
    statements: list[list[uuid.UUID]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A revocation committed before a request asked is never hidden by a read already running."""
    session_id, user_id = await seed_session(db)
    spy = queries.find_sessions_with_users
    reading, go_on = asyncio.Event(), asyncio.Event()

    async def slow(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        rows = await spy(conn, session_ids)  # read...
        reading.set()
        await go_on.wait()  # ...but answer only after the revocation below
        return rows

    monkeypatch.setattr(queries, "find_sessions_with_users", slow)
    lookup = SessionLookup(engine)
    first = asyncio.ensure_future(lookup.find(session_id, user_id))
    await reading.wait()
    await db.execute("UPDATE session SET revoked_at = $1 WHERE id = $2", NOW, session_id)
    second = asyncio.ensure_future(lookup.find(session_id, user_id))
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
    session_id, user_id = await seed_session(db)
    spy = queries.find_sessions_with_users
    failures = [asyncpg.ConnectionDoesNotExistError("connection lost")]

    async def failing_once(conn: Any, session_ids: Sequence[uuid.UUID]) -> Any:
        if failures:
            await spy(conn, session_ids)
            raise failures.pop()
        return await spy(conn, session_ids)

    monkeypatch.setattr(queries, "find_sessions_with_users", failing_once)
    lookup = SessionLookup(engine)
    results = await asyncio.gather(
        *(lookup.find(session_id, user_id) for _ in range(3)), return_exceptions=True
    )
    assert [type(result) for result in results] == [asyncpg.ConnectionDoesNotExistError] * 3

    row = await lookup.find(session_id, user_id)
    assert row is not None and row.id == session_id
    assert len(statements) == 2


async def test_a_cancelled_asker_does_not_cancel_the_others(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    session_id, user_id = await seed_session(db)
    lookup = SessionLookup(engine)
    async with engine.connect() as held:
        await held.get_raw_connection()
        leaving = asyncio.ensure_future(lookup.find(session_id, user_id))
        staying = asyncio.ensure_future(lookup.find(session_id, user_id))
        await settle()
        leaving.cancel()
        await settle()
    row = await staying
    assert leaving.cancelled()
    assert row is not None and row.id == session_id


async def test_batches_are_bounded(
    engine: AsyncEngine, db: asyncpg.Connection, statements: list[list[uuid.UUID]]
) -> None:
    asks = [await seed_session(db) for _ in range(7)]
    lookup = SessionLookup(engine, max_batch=3)
    async with engine.connect() as held:
        await held.get_raw_connection()
        pending = [asyncio.ensure_future(lookup.find(s, u)) for s, u in asks]
        await settle()
    rows = await asyncio.gather(*pending)
    assert sorted(len(batch) for batch in statements) == [1, 3, 3]
    assert [row.id if row else None for row in rows] == [s for s, _ in asks]
