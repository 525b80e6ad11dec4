"""Pruning 100,000 seeded sessions while clients keep refreshing through the API.

Two pruners run at once (two engines, as two processes would) next to a stream of refreshes:
every refresh succeeds, the pruners together delete exactly the dead rows, and every row that
must stay (live sessions, revoked ones whose tokens have not expired) is untouched, token chains
included.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg
import pytest
from helpers import login, refresh, register

from service.config import Settings
from service.db.engine import create_engine
from service.flows.pruning import PruneCounts, Pruner

SESSIONS = 100_000
USERS = 1_000
CHAIN = 3  # tokens per seeded session: two spent, one current
CLIENTS = 10

# Seeded session kinds by id % 10, with times relative to now for the test settings
# (idle TTL 1 h, absolute TTL 1 day): last use, absolute end, revocation.
SEED_SESSIONS = """
WITH kind(k, used, ends, revoked) AS (VALUES
    (0, interval '10 min', interval '22 h', NULL::interval),   -- live
    (1, interval '10 min', interval '22 h', NULL),
    (2, interval '59 min', interval '1 h', NULL),
    (3, interval '1 min', interval '1 min', NULL),
    (4, interval '30 min', interval '-1 h', NULL),             -- past the absolute end
    (5, interval '1 min', interval '0', NULL),
    (6, interval '2 h', interval '21 h', NULL),                -- past the idle end
    (7, interval '1 h', interval '21 h', NULL),
    (8, interval '3 h', interval '20 h', interval '2 h'),      -- revoked, tokens expired
    (9, interval '20 min', interval '20 h', interval '10 min') -- revoked, tokens live: kept
)
INSERT INTO session (id, user_id, created_at, last_used_at, expires_at, revoked_at, revoke_reason)
SELECT md5('s' || g)::uuid, md5('u' || g % $2)::uuid, now.t - interval '1 day' + kind.ends,
       now.t - kind.used, now.t + kind.ends, now.t - kind.revoked,
       CASE WHEN kind.revoked IS NOT NULL THEN 'logout' END
FROM generate_series(0, $3 - 1) AS g JOIN kind ON kind.k = g % 10
CROSS JOIN (SELECT $1::timestamptz) AS now(t)
"""
SEED_TOKENS = """
INSERT INTO refresh_token (id, session_id, parent_id, verifier, issued_at, expires_at, spent_at)
SELECT md5(s.id::text || j)::uuid, s.id,
       CASE WHEN j > 0 THEN md5(s.id::text || (j - 1))::uuid END,
       decode(md5('v' || s.id::text || j), 'hex'),
       s.last_used_at - (($1 - 1 - j) * interval '1 min'),
       least(s.last_used_at - (($1 - 1 - j) * interval '1 min') + interval '1 h', s.expires_at),
       CASE WHEN j < $1 - 1 THEN s.last_used_at - (($1 - 2 - j) * interval '1 min') END
FROM session s CROSS JOIN generate_series(0, $1 - 1) AS j
WHERE s.user_id IN (SELECT id FROM "user" WHERE email LIKE 'seed%')
"""
# What must survive: every session before its absolute and idle ends, revoked or not (a revoked
# one stays until its tokens have expired too).
KEPT = """
SELECT id FROM session WHERE expires_at > $1 AND last_used_at > $1::timestamptz - interval '1 h'
"""
# The token rows of some sessions, as a count and a digest of every column that matters.
CHAINS = """
SELECT count(*), md5(string_agg(id::text || session_id::text || coalesce(parent_id::text, '-')
                     || coalesce(spent_at::text, '-') || expires_at::text || verifier::text,
                     ',' ORDER BY id))
FROM refresh_token WHERE session_id = ANY($1::uuid[])
"""
SEEDED = "SELECT array_agg(md5('s' || g)::uuid) FROM generate_series(0, $1 - 1) AS g"


async def _seed(db: asyncpg.Connection, now: Any) -> None:
    await db.execute(
        """INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)
           SELECT md5('u' || g)::uuid, 'seed' || g || '@example.com',
                  'seed' || g || '@example.com', 'x', $1, $1
           FROM generate_series(0, $2 - 1) AS g""",
        now,
        USERS,
    )
    await db.execute(SEED_SESSIONS, now, USERS, SESSIONS)
    await db.execute(SEED_TOKENS, CHAIN)
    await db.execute(
        """INSERT INTO login_failure (kind, key, window_start, failures)
           SELECT 'ip', '10.0.' || g / 256 || '.' || g % 256,
                  $1::timestamptz - interval '1 min' * CASE WHEN g % 2 = 0 THEN 11 ELSE 1 END, 3
           FROM generate_series(0, 1999) AS g""",
        now,
    )
    await db.execute("ANALYZE")


async def _refresh_until(client: Any, token: str, done: asyncio.Event) -> tuple[list[int], str]:
    """Refresh one session's chain again and again until the pruners are done (at least once):
    the statuses, and the newest token."""
    statuses: list[int] = []
    while True:
        response = await refresh(client, token)
        statuses.append(response.status)
        if response.status != 200:
            return statuses, token
        token = (await response.json())["refresh_token"]
        if done.is_set():
            return statuses, token


@pytest.mark.slow
async def test_prune_keeps_exactly_the_rows_that_matter_while_clients_refresh(
    make_client: Any, db: asyncpg.Connection, database_url: str, settings: Settings, clock: Any
) -> None:
    client = await make_client()
    await register(client)
    clients = [await login(client) for _ in range(CLIENTS)]
    await _seed(db, clock.now)

    kept = {row["id"] for row in await db.fetch(KEPT, clock.now)}
    assert len(kept) == SESSIONS * 4 // 10 + SESSIONS // 10 + CLIENTS
    seeded = set(await db.fetchval(SEEDED, SESSIONS))
    seeded_kept = sorted(kept & seeded)
    assert len(seeded_kept) == SESSIONS // 2
    assert (await db.fetchrow(CHAINS, sorted(seeded)))[0] == SESSIONS * CHAIN
    kept_chains_before = await db.fetchrow(CHAINS, seeded_kept)
    assert kept_chains_before[0] == len(seeded_kept) * CHAIN

    # Two pruners (separate pools, as two processes) next to the refresh streams.
    engines = [create_engine(replace(settings, db_pool_size=2), database_url) for _ in range(2)]
    done = asyncio.Event()

    async def prune_all() -> list[PruneCounts]:
        try:
            return list(await asyncio.gather(*(Pruner(e, settings, clock).run() for e in engines)))
        finally:
            done.set()

    try:
        results = await asyncio.gather(
            prune_all(),
            *(_refresh_until(client, c["refresh_token"], done) for c in clients),
        )
    finally:
        for engine in engines:
            await engine.dispose()
    counts: list[PruneCounts] = results[0]
    streams: list[list[int]] = [statuses for statuses, _ in results[1:]]
    newest: list[str] = [token for _, token in results[1:]]

    # Every refresh made while pruning succeeded.
    assert all(status == 200 for stream in streams for status in stream), streams
    # Together the pruners deleted exactly the dead rows, each once.
    total = counts[0] + counts[1]
    assert total == PruneCounts(
        expired_sessions=SESSIONS * 2 // 10,
        idle_sessions=SESSIONS * 2 // 10,
        revoked_sessions=SESSIONS // 10,
        refresh_tokens=SESSIONS // 2 * CHAIN,
        login_failures=1000,
    )
    # Exactly the rows that matter are left, with their token chains as they were.
    assert {row["id"] for row in await db.fetch("SELECT id FROM session")} == kept
    assert await db.fetchrow(CHAINS, sorted(seeded)) == kept_chains_before
    assert await db.fetchval("SELECT count(*) FROM login_failure") == 1000
    # The refreshed sessions still rotate, and a pass over what is left deletes nothing.
    for stream, c, token in zip(streams, clients, newest, strict=True):
        tokens = await db.fetchval(
            "SELECT count(*) FROM refresh_token WHERE session_id = $1::uuid", c["session_id"]
        )
        assert tokens == 1 + len(stream)
        assert (await refresh(client, token)).status == 200
    engine = create_engine(settings, database_url)
    try:
        assert await Pruner(engine, settings, clock).run() == PruneCounts()
    finally:
        await engine.dispose()
