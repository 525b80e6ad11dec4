"""refresh_tokens.rotate_refresh_tokens, the one-statement refresh of a batch of tokens: it rotates only
the tokens that the rotation rule lets through (service/flows/refresh.py), writes nothing for the others, and
waits on the row lock of a concurrent rotation, after which it sees the token spent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from rows import insert_session
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import refresh_tokens
from service.db.engine import create_engine
from service.domain.tokens import RefreshToken

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=1)


@pytest.fixture
async def engine(database_url: str, db: asyncpg.Connection) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), database_url)
    try:
        yield engine.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


async def seed(db: asyncpg.Connection, session_end: datetime = NOW + IDLE * 24) -> RefreshToken:
    session_id, _ = await insert_session(db, now=NOW, session_end=session_end)
    token = RefreshToken.new()
    await db.execute(
        "INSERT INTO refresh_token (id, session_id, verifier, issued_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        token.id,
        session_id,
        token.verifier,
        NOW,
        NOW + IDLE,
    )
    return token


def ask(
    token: RefreshToken, child: RefreshToken, verifier: bytes | None = None
) -> refresh_tokens.RotationAsk:
    return refresh_tokens.RotationAsk(
        token.id,
        token.verifier if verifier is None else verifier,
        child.id,
        child.verifier,
        "test-agent",
        "10.0.0.1",
    )


async def rotate(
    engine: AsyncEngine, token: RefreshToken, now: datetime = NOW, verifier: bytes | None = None
) -> tuple[Any, RefreshToken]:
    child = token.child(uuid.uuid4())
    async with engine.connect() as conn:
        rows = await refresh_tokens.rotate_refresh_tokens(
            conn, [ask(token, child, verifier)], now=now, idle_ttl=IDLE
        )
    return rows.get(token.id), child


async def test_rotates_a_live_token_in_one_statement(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    token = await seed(db, session_end=NOW + timedelta(minutes=90))
    later = NOW + timedelta(minutes=40)
    row, child = await rotate(engine, token, now=later)
    # The child lives for the idle lifetime, capped by the session's absolute end.
    assert row.child_expires_at == NOW + timedelta(minutes=90)
    assert row.id == token.id
    stored = await db.fetchrow("SELECT * FROM refresh_token WHERE id = $1", child.id)
    assert stored["parent_id"] == token.id
    assert stored["verifier"] == child.verifier
    assert stored["issued_at"] == later
    assert await db.fetchval("SELECT spent_at FROM refresh_token WHERE id = $1", token.id) == later
    touched = await db.fetchrow("SELECT last_used_at, user_agent, host(ip) AS ip FROM session")
    assert tuple(touched) == (later, "test-agent", "10.0.0.1")


@pytest.mark.parametrize(
    "case", ["spent", "wrong verifier", "expired", "revoked", "idle", "disabled"]
)
async def test_writes_nothing_when_a_check_fails(
    engine: AsyncEngine, db: asyncpg.Connection, case: str
) -> None:
    token = await seed(db)
    now = NOW + timedelta(minutes=1)
    verifier = None
    if case == "spent":
        await db.execute("UPDATE refresh_token SET spent_at = $1", NOW)
    elif case == "wrong verifier":
        verifier = bytes(32)
    elif case == "expired":
        now = NOW + IDLE
    elif case == "revoked":
        await db.execute("UPDATE session SET revoked_at = $1", NOW)
    elif case == "idle":
        await db.execute("UPDATE session SET last_used_at = $1", NOW - IDLE)
    elif case == "disabled":
        await db.execute('UPDATE "user" SET disabled_at = $1', NOW)
    before = await db.fetch("SELECT * FROM refresh_token ORDER BY id")
    sessions_before = await db.fetch("SELECT * FROM session")
    row, _ = await rotate(engine, token, now=now, verifier=verifier)
    assert row is not None
    assert row.child_expires_at is None
    assert await db.fetch("SELECT * FROM refresh_token ORDER BY id") == before
    assert await db.fetch("SELECT * FROM session") == sessions_before


async def test_unknown_token_is_none(engine: AsyncEngine, db: asyncpg.Connection) -> None:
    await seed(db)
    row, _ = await rotate(engine, RefreshToken.new())
    assert row is None


async def test_waits_for_a_concurrent_rotation_then_rotates_nothing(
    engine: AsyncEngine, db: asyncpg.Connection, database_url: str
) -> None:
    token = await seed(db)
    holder = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM refresh_token WHERE id = $1 FOR UPDATE", token.id)
        waiting = asyncio.create_task(rotate(engine, token))
        # Until the statement is blocked on the lock (bounded: 10 s).
        for _ in range(1000):
            blocked = await db.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if blocked:
                break
            await asyncio.sleep(0.01)
        assert blocked == 1
        assert not waiting.done()
        await holder.execute("UPDATE refresh_token SET spent_at = $1 WHERE id = $2", NOW, token.id)
        await transaction.commit()
        row, _ = await waiting
    finally:
        await holder.close()
    assert row.spent_at == NOW
    assert row.child_expires_at is None
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == 1


async def test_a_batch_rotates_exactly_the_tokens_that_pass(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    live, wrong, spent, other_live = [await seed(db) for _ in range(4)]
    await db.execute("UPDATE refresh_token SET spent_at = $1 WHERE id = $2", NOW, spent.id)
    unknown = RefreshToken.new()
    children = {token.id: token.child(uuid.uuid4()) for token in (live, wrong, spent, other_live)}
    children[unknown.id] = unknown.child(uuid.uuid4())
    asks = [
        ask(live, children[live.id]),
        ask(wrong, children[wrong.id], verifier=bytes(32)),
        ask(spent, children[spent.id]),
        ask(unknown, children[unknown.id]),
        ask(other_live, children[other_live.id]),
    ]
    before = {row["id"]: row for row in await db.fetch("SELECT * FROM refresh_token")}
    now = NOW + timedelta(minutes=1)
    async with engine.connect() as conn:
        rows = await refresh_tokens.rotate_refresh_tokens(conn, asks, now=now, idle_ttl=IDLE)

    assert set(rows) == {live.id, wrong.id, spent.id, other_live.id}  # unknown: absent
    rotated = {token_id for token_id, row in rows.items() if row.child_expires_at is not None}
    assert rotated == {live.id, other_live.id}
    after = {row["id"]: row for row in await db.fetch("SELECT * FROM refresh_token")}
    assert set(after) == set(before) | {children[live.id].id, children[other_live.id].id}
    for token in (live, other_live):
        assert after[token.id]["spent_at"] == now
        assert after[children[token.id].id]["parent_id"] == token.id
        assert after[children[token.id].id]["verifier"] == children[token.id].verifier
    assert after[wrong.id] == before[wrong.id] and after[spent.id] == before[spent.id]
    touched = await db.fetch("SELECT id FROM session WHERE last_used_at = $1", now)
    assert {row["id"] for row in touched} == {
        rows[live.id].session_id,
        rows[other_live.id].session_id,
    }


async def test_batches_sharing_tokens_in_any_order_never_deadlock(
    engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    """Two processes each batching the same two tokens (a client retrying on both): the rows
    are locked in one order, so one batch waits for the other, and each token rotates once."""
    for _ in range(15):
        first, second = await seed(db), await seed(db)

        async def batch(tokens: list[RefreshToken]) -> dict[uuid.UUID, Any]:
            asks = [ask(token, token.child(uuid.uuid4())) for token in tokens]
            async with engine.connect() as conn:
                return await refresh_tokens.rotate_refresh_tokens(
                    conn, asks, now=NOW, idle_ttl=IDLE
                )

        one, other = await asyncio.gather(batch([first, second]), batch([second, first]))
        for token in (first, second):
            rotations = [rows[token.id].child_expires_at is not None for rows in (one, other)]
            assert sorted(rotations) == [False, True]
            children = await db.fetchval(
                "SELECT count(*) FROM refresh_token WHERE parent_id = $1", token.id
            )
            assert children == 1
