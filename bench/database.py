"""The benchmark's PostgreSQL: DATABASE_URL's server or the embedded one, a fresh database on it,
seeded with set-based SQL (INSERT ... SELECT generate_series) whose tokens the bench can rebuild.

Seeded row i has deterministic ids and secrets, so the bench computes the refresh token of any
seeded session without reading the database, and the database still holds only verifiers:
  user i:           id md5('bench-user-' || i), email user<i>@bench.example (password hash of cost
                    10); slow user i: id md5('bench-slow-' || i), email slow<i>@bench.example
                    (cost 12)
  session i:        id md5('bench-session-' || i), of user 1 + (i - 1) % users
  refresh token i:  id md5('bench-token-' || i), secret sha256('bench-secret-' || i)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
from sqlalchemy.engine import make_url

from service.domain.keys import hmac_key_set
from service.domain.passwords import hash_password_sync
from service.domain.tokens import AccessTokens, RefreshToken

PASSWORD = "bench password 1234"  # noqa: S105 - the seeded users' password, only on this bench
SLOW_USERS = 200


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_server(data_dir: Path) -> Iterator[str]:
    """DATABASE_URL's server when set, else the embedded PostgreSQL in `data_dir`."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield libpq(configured)
        return
    try:
        from service.ops.embedded import EmbeddedPostgres  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise SystemExit("bench: set DATABASE_URL (no embedded PostgreSQL here)") from None
    embedded = EmbeddedPostgres(data_dir)
    url: str = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(libpq(url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def settle(url: str) -> None:
    """Finish the background work the previous scenario left (dead rows to vacuum, dirty pages
    to write), so that it is not done during, and charged to, the next measurement."""
    asyncio.run(_execute(url, "VACUUM (ANALYZE)", "CHECKPOINT"))


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new, empty database on the server, dropped at the end."""
    name = f"rotor_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pg_env(url: str) -> dict[str, str]:
    """libpq's PG* variables for `url` (pgbench and psql take them)."""
    parts = urlsplit(libpq(url))
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    env = {
        "PGHOST": query.get("host") or parts.hostname or "",
        "PGPORT": query.get("port") or str(parts.port or 5432),
        "PGUSER": parts.username or "postgres",
        "PGDATABASE": parts.path.lstrip("/"),
    }
    if parts.password:
        env["PGPASSWORD"] = parts.password
    return {key: value for key, value in env.items() if value}


def _md5_uuid(text: str) -> uuid.UUID:
    return uuid.UUID(hashlib.md5(text.encode()).hexdigest())  # noqa: S324 - an id, not security


def refresh_token(session: int) -> str:
    secret = hashlib.sha256(f"bench-secret-{session}".encode()).digest()
    return RefreshToken(_md5_uuid(f"bench-token-{session}"), secret).encode()


def email(user: int) -> str:
    return f"user{user}@bench.example"


def slow_email(user: int) -> str:
    return f"slow{user}@bench.example"


class Seeds:
    """Seeded rows, and which sessions the benchmark has not used yet (a rotated chain cannot
    be replayed: every run that rotates takes sessions of its own)."""

    def __init__(self, url: str, jwt_secret: bytes) -> None:
        self.url = url
        self.users = 0
        self.sessions = 0
        self._next_session = 1
        self._user_of: list[tuple[int, int]] = []  # (first session, users count at seeding)
        self._access = AccessTokens(hmac_key_set(jwt_secret), "rotor", "rotor")

    def take(self, count: int) -> range:
        if self._next_session + count - 1 > self.sessions:
            raise RuntimeError("bench: out of seeded sessions, seed more")
        taken = range(self._next_session, self._next_session + count)
        self._next_session += count
        return taken

    def access_token(self, session: int) -> str:
        users = next(users for first, users in reversed(self._user_of) if first <= session)
        user_id = _md5_uuid(f"bench-user-{1 + (session - 1) % users}")
        now = datetime.now(UTC)
        return self._access.issue(
            user_id, _md5_uuid(f"bench-session-{session}"), now, now + timedelta(hours=1)
        )

    def grow(self, sessions: int) -> None:
        """Seed users (one per ten sessions, at least 1,000) and sessions up to `sessions`."""
        users = max(1000, sessions // 10)
        asyncio.run(self._grow(users, sessions))
        self._user_of.append((self.sessions + 1, users))
        self.users, self.sessions = users, sessions

    async def _grow(self, users: int, sessions: int) -> None:
        conn = await asyncpg.connect(libpq(self.url))
        try:
            if self.users == 0:
                slow_hash = hash_password_sync(PASSWORD, 12)
                await conn.execute(
                    """INSERT INTO "user"
                        (id, email, email_canonical, password_hash, created_at, updated_at)
                    SELECT md5('bench-slow-' || i)::uuid, 'slow' || i || '@bench.example',
                        'slow' || i || '@bench.example', $1, now(), now()
                    FROM generate_series(1, $2::int) AS i""",
                    slow_hash,
                    SLOW_USERS,
                )
            await conn.execute(
                """INSERT INTO "user"
                    (id, email, email_canonical, password_hash, created_at, updated_at)
                SELECT md5('bench-user-' || i)::uuid, 'user' || i || '@bench.example',
                    'user' || i || '@bench.example', $1, now(), now()
                FROM generate_series($2::int, $3::int) AS i""",
                hash_password_sync(PASSWORD, 10),
                self.users + 1,
                users,
            )
            await conn.execute(
                """INSERT INTO session (id, user_id, device_name, platform, user_agent, ip,
                    created_at, last_used_at, expires_at)
                SELECT md5('bench-session-' || i)::uuid,
                    md5('bench-user-' || (1 + (i - 1) % $3::int))::uuid, 'bench', 'linux',
                    'wrk', '127.0.0.1', now(), now(), now() + interval '90 days'
                FROM generate_series($1::int, $2::int) AS i""",
                self.sessions + 1,
                sessions,
                users,
            )
            await conn.execute(
                """INSERT INTO refresh_token (id, session_id, verifier, issued_at, expires_at)
                SELECT md5('bench-token-' || i)::uuid, md5('bench-session-' || i)::uuid,
                    sha256(sha256(convert_to('bench-secret-' || i, 'UTF8'))),
                    now(), now() + interval '14 days'
                FROM generate_series($1::int, $2::int) AS i""",
                self.sessions + 1,
                sessions,
            )
            await conn.execute('VACUUM ANALYZE "user", session, refresh_token')
        finally:
            await conn.close()
