"""Queries that PostgreSQL itself ends while a request waits on them: a cancel (what
statement_timeout or an operator's pg_cancel_backend does) and a terminated backend (what a
restart or pg_terminate_backend does). Both are 503 with nothing committed, and the same process
goes on serving."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from helpers import signed_in
from servers import StartServer, answer, backend_waiting_on_a_lock

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("ending", ["pg_cancel_backend", "pg_terminate_backend"])
async def test_query_ended_by_the_server_is_503(
    ending: str, serve: StartServer, database_url: str, db: asyncpg.Connection
) -> None:
    """A query that PostgreSQL cancels (statement_timeout, an operator) or whose backend it
    terminates (a restart, an operator) mid-transaction is a 503, and the process carries on."""
    server = await serve("ended")
    async with server.client() as http:
        tokens = await signed_in(http)
        refresh_body = {"refresh_token": tokens["refresh_token"]}
        locker = await asyncpg.connect(database_url)
        try:
            async with locker.transaction():
                await locker.execute("SELECT 1 FROM session FOR UPDATE")
                pending = asyncio.create_task(
                    answer(http, "POST", "/v1/refresh", json=refresh_body)
                )
                pid = await backend_waiting_on_a_lock(db)
                assert await db.fetchval(f"SELECT {ending}($1)", pid)
                status, _, body = await pending
        finally:
            await locker.close()
        assert (status, body["error"]) == (503, "service_unavailable"), body
        # Nothing of the refresh was committed, and the same token still refreshes.
        assert await db.fetchval("SELECT count(*) FROM refresh_token") == 1
        status, _, _ = await answer(http, "POST", "/v1/refresh", json=refresh_body)
        assert status == 200
    server.assert_no_unhandled_errors()
