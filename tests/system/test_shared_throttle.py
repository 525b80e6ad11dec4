"""Login throttling across two real server processes: the counters live in PostgreSQL, so
failures spread over both processes add up, and the limit holds on both."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from helpers import PASSWORD, register
from servers import StartServer

pytestmark = pytest.mark.slow

MAX_FAILURES = 4


async def test_failures_on_two_processes_share_one_counter(
    serve: StartServer, db: asyncpg.Connection
) -> None:
    limits = {"AUTH_LOGIN_MAX_FAILURES": str(MAX_FAILURES), "AUTH_LOGIN_WINDOW": "600"}
    a, b = await asyncio.gather(serve("a", **limits), serve("b", **limits))
    async with a.client() as http_a, b.client() as http_b:
        await register(http_a)
        wrong = {"email": "ada@example.com", "password": "not the password"}
        # Two failures on each process: neither alone reached the limit of four.
        for http in [http_a, http_b, http_a, http_b]:
            async with http.post("/v1/login", json=wrong) as response:
                assert response.status == 401
        right = {"email": "ada@example.com", "password": PASSWORD}
        for http in [http_a, http_b]:
            async with http.post("/v1/login", json=right) as response:
                assert response.status == 429
                assert (await response.json())["error"] == "rate_limited"
                assert 0 < int(response.headers["Retry-After"]) <= 600
