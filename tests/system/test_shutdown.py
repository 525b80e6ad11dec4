"""Graceful shutdown of a real server process on SIGTERM.

A request is held in flight by a row lock that the test owns (the server's backend is seen
waiting for it in pg_stat_activity, so nothing depends on how fast anything runs). Then
SIGTERM: the port stops accepting at once, the in-flight request finishes once the lock is
released and its client gets the answer, and the process exits 0 with its pool closed. What the
request wrote is in the database exactly when its client got the answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
import pytest
from helpers import PASSWORD, signed_in
from servers import ServerProcess, StartServer, answer, backend_waiting_on_a_lock

from service.cli import SHUTDOWN_TIMEOUT
from service.domain.tokens import RefreshToken

pytestmark = pytest.mark.slow

POLL_ATTEMPTS = 200


@asynccontextmanager
async def _locked(database_url: str, statement: str) -> AsyncIterator[None]:
    """Hold the row locks of `statement` (a SELECT ... FOR UPDATE) until the block ends."""
    locker = await asyncpg.connect(database_url)
    try:
        async with locker.transaction():
            await locker.execute(statement)
            yield
    finally:
        await locker.close()


async def _refused(server: ServerProcess) -> bool:
    """Whether a new TCP connection to the server is refused, polling while SIGTERM lands."""
    for _ in range(POLL_ATTEMPTS):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            # Caught in the listener's backlog as it closed: not served, but not yet the clean
            # refusal this waits for either.
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await asyncio.sleep(0.05)
    return False


async def _rotor_backends(db: asyncpg.Connection) -> int:
    """The server's connections to this database, once the ones being torn down are gone."""
    count = 0
    for _ in range(POLL_ATTEMPTS):
        count = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = 'rotor' AND datname = current_database()"
        )
        if count == 0:
            break
        await asyncio.sleep(0.05)
    return int(count)


async def _in_flight_during_sigterm(
    server: ServerProcess,
    http: aiohttp.ClientSession,
    database_url: str,
    db: asyncpg.Connection,
    lock: str,
    request: tuple[str, str, dict[str, Any]],
) -> tuple[int, dict[str, Any]]:
    """Send `request`, hold it on `lock`, SIGTERM the server, check that it refuses new
    connections, then let the request finish: its status and body."""
    method, path, kwargs = request
    async with _locked(database_url, lock):
        pending = asyncio.create_task(answer(http, method, path, **kwargs))
        await backend_waiting_on_a_lock(db)
        server.signal()
        assert await _refused(server)
        assert not pending.done()
        assert server.process.poll() is None  # still serving its in-flight request
    status, _, body = await pending
    return status, body


async def test_sigterm_lets_an_in_flight_refresh_commit_and_answer(
    serve: StartServer, database_url: str, db: asyncpg.Connection
) -> None:
    server = await serve("shutdown")
    async with server.client() as http:
        tokens = await signed_in(http)
        status, body = await _in_flight_during_sigterm(
            server,
            http,
            database_url,
            db,
            "SELECT 1 FROM session FOR UPDATE",
            ("POST", "/v1/refresh", {"json": {"refresh_token": tokens["refresh_token"]}}),
        )
    assert status == 200, body
    assert await server.exit_code() == 0
    child = RefreshToken.parse(body["refresh_token"])
    parent = RefreshToken.parse(tokens["refresh_token"])
    assert child is not None
    assert parent is not None
    # The whole rotation committed: parent spent, and the child the client holds exists.
    row = await db.fetchrow("SELECT parent_id, spent_at FROM refresh_token WHERE id = $1", child.id)
    assert row["parent_id"] == parent.id
    assert row["spent_at"] is None
    assert await db.fetchval("SELECT spent_at FROM refresh_token WHERE id = $1", parent.id)
    assert await _rotor_backends(db) == 0
    server.assert_no_unhandled_errors()


async def test_sigterm_lets_an_in_flight_login_commit_and_answer(
    serve: StartServer, database_url: str, db: asyncpg.Connection
) -> None:
    # A slow hash as well: the login is in flight for a while before it even reaches the lock.
    server = await serve("shutdown", AUTH_BCRYPT_ROUNDS="12")
    async with server.client() as http:
        await signed_in(http)
        status, body = await _in_flight_during_sigterm(
            server,
            http,
            database_url,
            db,
            'SELECT 1 FROM "user" FOR UPDATE',
            ("POST", "/v1/login", {"json": {"email": "ada@example.com", "password": PASSWORD}}),
        )
    assert status == 200, body
    assert await server.exit_code() == 0
    sessions = await db.fetch("SELECT id FROM session ORDER BY created_at")
    assert [row["id"] for row in sessions][-1] == uuid.UUID(body["session_id"])
    assert await _rotor_backends(db) == 0
    server.assert_no_unhandled_errors()


async def test_request_still_stuck_after_the_shutdown_timeout_commits_nothing(
    serve: StartServer, database_url: str, db: asyncpg.Connection
) -> None:
    """The other half of "whole or not at all": a refresh that cannot finish within the
    shutdown timeout is cancelled and rolled back; its client gets no token, and none exists."""
    # A statement timeout beyond the shutdown timeout, so that it is the shutdown that ends it.
    server = await serve("shutdown", ROTOR_DB_STATEMENT_TIMEOUT="60")
    async with server.client() as http:
        tokens = await signed_in(http)
        async with _locked(database_url, "SELECT 1 FROM session FOR UPDATE"):
            pending = asyncio.create_task(
                answer(http, "POST", "/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
            )
            await backend_waiting_on_a_lock(db)
            server.signal()
            # The lock is held until the process is gone: it must give up on its own, within
            # the shutdown timeout (plus a margin for closing the pool and exiting).
            assert await server.exit_code(within=SHUTDOWN_TIMEOUT + 5) == 0
            # The refresh is one statement, so nothing but PostgreSQL can stop it once the process
            # is gone: client_connection_check_interval makes its backend notice the dead client
            # and abort within a second (service/db/engine.py). Release the lock after that.
            assert await _rotor_backends(db) == 0
        with pytest.raises(aiohttp.ClientError):
            await pending
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == 1
    assert await db.fetchval("SELECT spent_at FROM refresh_token") is None
    assert await _rotor_backends(db) == 0
    server.assert_no_unhandled_errors()
