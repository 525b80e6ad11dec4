"""One table of cases for "may this token rotate now" and "is this session live", run through
every form of the rule: the Python predicates (the locked refresh path, introspection, the
session check of protected routes) and the SQL (the one-statement batched rotation, the session
list). Each case must get the same verdict everywhere."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from rows import insert_session
from sqlalchemy.ext.asyncio import AsyncEngine

from service.config import Settings
from service.db import refresh_tokens, sessions
from service.db.engine import create_engine
from service.domain.rotation import may_rotate
from service.domain.sessions import session_live
from service.domain.tokens import RefreshToken

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
IDLE = timedelta(hours=1)
SECOND = timedelta(seconds=1)


@dataclass(frozen=True)
class Case:
    name: str
    rotates: bool
    session_live: bool
    spent: bool = False
    token_expires: timedelta = IDLE  # from NOW
    revoked: bool = False
    session_ends: timedelta = timedelta(days=30)  # absolute end, from NOW
    last_used: timedelta = timedelta(0)  # before NOW
    disabled: bool = False


CASES = [
    Case("live", rotates=True, session_live=True),
    Case("spent", rotates=False, session_live=True, spent=True),
    Case("token expired now", rotates=False, session_live=True, token_expires=timedelta(0)),
    Case("token expires in a second", rotates=True, session_live=True, token_expires=SECOND),
    Case("session revoked", rotates=False, session_live=False, revoked=True),
    Case("absolute end now", rotates=False, session_live=False, session_ends=timedelta(0)),
    Case("absolute end in a second", rotates=True, session_live=True, session_ends=SECOND),
    Case("idle exactly", rotates=False, session_live=False, last_used=IDLE),
    Case("idle less a second", rotates=True, session_live=True, last_used=IDLE - SECOND),
    Case("user disabled", rotates=False, session_live=True, disabled=True),
    Case("spent and revoked", rotates=False, session_live=False, spent=True, revoked=True),
]


@pytest.fixture
async def engine(database_url: str, db: asyncpg.Connection) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(Settings(), database_url)
    try:
        yield engine.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


async def seed(db: asyncpg.Connection, case: Case) -> tuple[RefreshToken, uuid.UUID, uuid.UUID]:
    session_id, user_id = await insert_session(
        db, now=NOW - case.last_used, session_end=NOW + case.session_ends
    )
    token = RefreshToken.new()
    await db.execute(
        "INSERT INTO refresh_token (id, session_id, verifier, issued_at, expires_at, spent_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        token.id,
        session_id,
        token.verifier,
        NOW - case.last_used,
        NOW + case.token_expires,
        NOW - SECOND if case.spent else None,
    )
    if case.revoked:
        await db.execute("UPDATE session SET revoked_at = $2 WHERE id = $1", session_id, NOW)
    if case.disabled:
        await db.execute('UPDATE "user" SET disabled_at = $2 WHERE id = $1', user_id, NOW)
    return token, session_id, user_id


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_every_form_of_the_rule_gives_the_same_verdict(
    case: Case, engine: AsyncEngine, db: asyncpg.Connection
) -> None:
    token, session_id, user_id = await seed(db, case)
    async with engine.connect() as conn:
        state = await refresh_tokens.find_refresh_token(conn, token.id)
        assert state is not None
        listed = await sessions.list_live_sessions(conn, user_id, NOW, int(IDLE.total_seconds()))
        child = token.child(uuid.uuid4())
        ask = refresh_tokens.RotationAsk(
            token.id, token.verifier, child.id, child.verifier, None, None
        )
        rotated = await refresh_tokens.rotate_refresh_tokens(conn, [ask], now=NOW, idle_ttl=IDLE)
    # The Python forms: the locked refresh path and introspection (may_rotate), the session
    # check of protected routes (session_live).
    assert may_rotate(state, NOW, IDLE) is case.rotates
    python_live = session_live(
        state.revoked_at, state.session_expires_at, state.last_used_at, NOW, IDLE
    )
    assert python_live is case.session_live
    # The SQL forms: the batched rotation statement and the live-session list.
    assert (rotated[token.id].child_expires_at is not None) is case.rotates
    assert ([row.id for row in listed] == [session_id]) is case.session_live
    # What the statement wrote agrees with its verdict.
    children = await db.fetchval(
        "SELECT count(*) FROM refresh_token WHERE parent_id = $1", token.id
    )
    assert children == (1 if case.rotates else 0)
