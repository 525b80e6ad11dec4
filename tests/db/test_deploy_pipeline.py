"""`rotor migrate` and `rotor prune` as a deploy pipeline or cron runs them: real processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from service.ops.migrate import head_revision, upgrade


def _env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "DATABASE_URL"))}
    return {**clean, **extra}


def _rotor(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _query(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def _tables(url: str) -> set[str]:
    rows = asyncio.run(_query(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    return {row["tablename"] for row in rows}


def _revision(url: str) -> str:
    return str(asyncio.run(_query(url, "SELECT version_num FROM alembic_version"))[0][0])


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound, so nobody else gets it, but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_second_migrate_is_a_no_op(create_database: Callable[[], str]) -> None:
    url = create_database()
    first = _rotor("migrate", DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    assert "Running upgrade" in first.stderr
    second = _rotor("migrate", DATABASE_URL=url)
    assert second.returncode == 0, second.stderr
    assert "Running upgrade" not in second.stderr
    assert _revision(url) == head_revision()


@pytest.mark.slow
def test_parallel_migrate_jobs_run_one_after_the_other(create_database: Callable[[], str]) -> None:
    url = create_database()
    jobs = [
        subprocess.Popen(
            [sys.executable, "-m", "service", "migrate"],
            env=_env(DATABASE_URL=url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(job.wait(timeout=120), job.communicate()[1]) for job in jobs]
    assert [code for code, _ in results] == [0, 0, 0], results
    for _, stderr in results:
        assert "Traceback" not in stderr
        assert "ERROR" not in stderr
    # Exactly one job applied the migrations; the others waited and found the schema at head.
    assert sum("Running upgrade" in stderr for _, stderr in results) == 1
    assert _revision(url) == head_revision()
    assert {"user", "session", "refresh_token", "login_failure"} <= _tables(url)


@pytest.mark.parametrize("command", ["migrate", "prune", "serve"])
def test_unreachable_database_is_one_line_and_exit_3(closed_port: int, command: str) -> None:
    url = f"postgresql://rotor:secret-pw@127.0.0.1:{closed_port}/rotor"
    result = _rotor(command, DATABASE_URL=url, AUTH_JWT_SECRET="s" * 32)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rotor: cannot connect to the database at DATABASE_URL")
    assert f"127.0.0.1:{closed_port}/rotor" in lines[0]
    assert "secret-pw" not in result.stderr + result.stdout


def test_missing_database_is_named(create_database: Callable[[], str]) -> None:
    url = create_database().rsplit("/", 1)[0] + "/rotor_no_such_database"
    result = _rotor("migrate", DATABASE_URL=url)
    assert result.returncode == 3
    assert 'database "rotor_no_such_database" does not exist' in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        ("migrate", "AUTH_SESSION_IDLE_TTL", "soon"),
        ("prune", "AUTH_PRUNE_INTERVAL", "-5"),
        ("serve", "AUTH_PRUNE_INTERVAL", "every hour"),
    ],
)
def test_configuration_error_exits_2_naming_the_variable(
    command: str, variable: str, value: str
) -> None:
    result = _rotor(command, DATABASE_URL="postgresql://x@127.0.0.1:9/x", **{variable: value})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rotor: configuration error: " + variable)


def test_migrate_sql_prints_the_schema_and_touches_nothing(
    create_database: Callable[[], str],
) -> None:
    url = create_database()
    result = _rotor("migrate", "--sql", DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    for table in (
        "CREATE TABLE session",
        "CREATE TABLE refresh_token",
        "CREATE TABLE alembic_version",
    ):
        assert table in result.stdout
    assert _tables(url) == set()


def test_prune_prints_what_it_deleted(create_database: Callable[[], str]) -> None:
    url = create_database()
    refused = _rotor("prune", DATABASE_URL=url)  # an empty database: migrate first
    assert refused.returncode == 3
    assert "rotor migrate" in refused.stderr
    upgrade(url)
    now = datetime.now(UTC)
    asyncio.run(_seed_one_dead_and_one_live_session(url, now))
    result = _rotor("prune", DATABASE_URL=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "deleted expired_sessions=1 revoked_sessions=0 idle_sessions=0 refresh_tokens=1 "
        "login_failures=0 auth_events=0 codes=0 messages=0 id_tokens=0"
    )
    assert len(asyncio.run(_query(url, "SELECT id FROM session"))) == 1


async def _seed_one_dead_and_one_live_session(url: str, now: datetime) -> None:
    day = timedelta(days=1)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            """INSERT INTO "user" (id, email, email_canonical, password_hash, created_at,
                                  updated_at)
               VALUES (gen_random_uuid(), 'ada@example.com', 'ada@example.com', 'x', $1, $1)""",
            now,
        )
        for name, ends in (("dead", now - day), ("live", now + day)):
            await conn.execute(
                """WITH s AS (
                       INSERT INTO session (id, user_id, device_name, created_at, last_used_at,
                                            expires_at)
                       SELECT gen_random_uuid(), id, $1, $2, $2, $3 FROM "user" RETURNING id)
                   INSERT INTO refresh_token (id, session_id, verifier, issued_at, expires_at)
                   SELECT gen_random_uuid(), id, '\\x00', $2, $3 FROM s""",
                name,
                min(now, ends - timedelta(minutes=1)),
                ends,
            )
    finally:
        await conn.close()
