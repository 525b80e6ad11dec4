"""Test fixtures: a fresh PostgreSQL database per run, migrated with Alembic, and the real app.

The server comes from TEST_DATABASE_URL (or DATABASE_URL); without either, an embedded PostgreSQL
in .rotor/test-postgres. The run's database is dropped at the end; tables are emptied before
every test that uses the app, so tests never see each other's rows.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from mail_support import SmtpSink
from servers import ServerProcess, StartServer, start_server
from sqlalchemy.engine import make_url
from tests_support import TEST_SECRET

from service.config import Settings
from service.domain.keys import KeySet, hmac_key_set
from service.ops.logs import JsonFormatter
from service.ops.migrate import upgrade
from service.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """An injected clock: tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(_libpq(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server we may create databases on (its own database is untouched)."""
    configured = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        yield _libpq(configured)
        return
    from service.ops.embedded import EmbeddedPostgres

    embedded = EmbeddedPostgres(ROOT / ".rotor" / "test-postgres")
    yield embedded.start()
    embedded.stop()


@pytest.fixture(scope="session")
def create_database(server_url: str) -> Iterator[Callable[[], str]]:
    """Make fresh, empty databases on the server; all of them are dropped after the run."""
    created: list[str] = []

    def create() -> str:
        name = f"rotor_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        created.append(name)
        return _with_database(server_url, name)

    yield create
    for name in created:
        asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(create_database: Callable[[], str]) -> str:
    """This run's database, migrated to head with Alembic (not create_all)."""
    url = create_database()
    upgrade(url)
    return url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection to this run's database, with every table emptied first."""
    conn = await asyncpg.connect(database_url)
    await conn.execute(
        'TRUNCATE "user", session, refresh_token, login_failure, auth_event, staff, '
        "console_session, one_time_code, outbox_message, identity, id_token_use "
        "RESTART IDENTITY CASCADE"
    )
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return Settings(
        jwt_secret=TEST_SECRET,
        bcrypt_rounds=4,
        access_ttl=900,
        session_idle_ttl=3600,
        session_max_ttl=86_400,
        reuse_grace=10,
        login_max_failures=5,
        login_window=600,
        cookie_secure=True,
        max_sessions=50,
        db_pool_size=25,
    )


@pytest.fixture
def keys(settings: Settings) -> KeySet:
    assert settings.jwt_secret is not None
    return hmac_key_set(settings.jwt_secret)


MakeClient = Callable[..., Awaitable[TestClient[Any, web.Application]]]


@pytest.fixture
def make_client(
    aiohttp_client: Any,
    database_url: str,
    db: asyncpg.Connection,
    settings: Settings,
    keys: KeySet,
    clock: FakeClock,
) -> MakeClient:
    """A test client of the real app; keyword arguments override settings (and `keys`,
    `database_url`)."""

    async def make(**overrides: Any) -> TestClient[Any, web.Application]:
        app_keys = overrides.pop("keys", keys)
        url = overrides.pop("database_url", database_url)
        app = create_app(replace(settings, **overrides), url, app_keys, clock)
        client: TestClient[Any, web.Application] = await aiohttp_client(app)
        return client

    return make


@pytest.fixture
async def client(make_client: MakeClient) -> TestClient[Any, web.Application]:
    return await make_client()


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[StartServer]:
    """Start real `rotor serve` processes (on this run's database unless told otherwise);
    every one still running at the end of the test is stopped."""
    started: list[ServerProcess] = []

    async def start(
        name: str = "server", *, database: str | None = None, **env: str
    ) -> ServerProcess:
        server = await start_server(database or database_url, tmp_path, name, env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A real SMTP server (aiosmtpd) on a free loopback port, stopped at the end."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Everything logged during the test, as the server formats it for a non-terminal (the
    attack replays of tests/security read what a request logged)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [orjson.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
