"""`python -m bench.explain [--sessions N]`: EXPLAIN (ANALYZE, BUFFERS) of the hot queries on a
fresh database seeded like the benchmark's (each inside a transaction that is rolled back).

The refresh rotation and the session check (each for a batch of requests, as the service runs
them under load) are the service's own SQL text (service/db/queries.py); the login lookups
mirror its Core statements as the compiler renders them.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.database import (
    Seeds,
    _md5_uuid,
    fresh_database,
    libpq,
    postgres_server,
    refresh_token,
)
from bench.run import JWT_SECRET
from service.db import refresh_tokens, sessions
from service.domain.tokens import RefreshToken
from service.ops.migrate import upgrade

LOGIN_BY_EMAIL = """SELECT "user".id, "user".email, "user".password_hash, "user".created_at,
    "user".updated_at, "user".disabled_at
FROM "user" WHERE lower("user".email) = $1"""
LOGIN_FAILURES = """SELECT login_failure.kind, login_failure.key, login_failure.window_start,
    login_failure.failures
FROM login_failure
WHERE login_failure.kind = $1 AND login_failure.key = $2
    OR login_failure.kind = $3 AND login_failure.key = $4"""
SESSION_CAP = """SELECT session.id FROM session
WHERE session.user_id = $1 AND session.revoked_at IS NULL AND session.expires_at > $2
    AND session.last_used_at > $3
ORDER BY session.last_used_at, session.id"""


# Requests per statement in the plans: about what one worker's batches carry under the
# benchmark's 64 connections.
BATCH = 16


def rotation_asks(first_session: int, count: int) -> list[refresh_tokens.RotationAsk]:
    """Rotations of the seeded sessions' current tokens."""
    asks = []
    for session in range(first_session, first_session + count):
        token = RefreshToken.parse(refresh_token(session))
        assert token is not None
        child = token.child(uuid.uuid4())
        asks.append(
            refresh_tokens.RotationAsk(
                token.id, token.verifier, child.id, child.verifier, "bench", "127.0.0.1"
            )
        )
    return asks


async def explain(url: str, session: int, users: int) -> None:
    conn = await asyncpg.connect(libpq(url))
    now = datetime.now(UTC)
    user_id = _md5_uuid("bench-user-1")
    statements = [
        (
            f"refresh: a batch of {BATCH} rotations in one statement (refresh_tokens._ROTATE)",
            refresh_tokens._ROTATE,
            refresh_tokens.rotate_arguments(rotation_asks(session, BATCH), now, timedelta(days=14)),
        ),
        (
            f"GET /v1/me: a batch of {BATCH} session checks (sessions._SESSIONS_WITH_USERS)",
            sessions._SESSIONS_WITH_USERS,
            ([_md5_uuid(f"bench-session-{session + i}") for i in range(BATCH)],),
        ),
        ("login: user by email", LOGIN_BY_EMAIL, ("user1@bench.example",)),
        (
            "login: failure counters",
            LOGIN_FAILURES,
            ("account", "user1@bench.example", "ip", "127.0.0.1"),
        ),
        ("login: session cap", SESSION_CAP, (user_id, now, now - timedelta(days=14))),
    ]
    try:
        for title, sql, args in statements:
            transaction = conn.transaction()
            await transaction.start()
            try:
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *args)
            finally:
                await transaction.rollback()
            print(f"-- {title}")
            print("\n".join(row[0] for row in rows))
            print()
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__)
    parser.add_argument("--sessions", type=int, default=10_000)
    args = parser.parse_args()
    with (
        postgres_server(Path(".rotor") / "bench-postgres") as server_url,
        fresh_database(server_url) as url,
    ):
        upgrade(url)
        seeds = Seeds(url, JWT_SECRET)
        seeds.grow(args.sessions)
        asyncio.run(explain(url, args.sessions // 2, seeds.users))


if __name__ == "__main__":
    main()
