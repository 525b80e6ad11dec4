"""One ID token, two real `rotor serve` processes: it signs in once, whichever answers first
(the one-time-use record is in PostgreSQL, shared by every process). Also the configuration
through the environment, as an operator sets it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from oidc_fixture import CLIENT_ID, FakeProvider
from servers import StartServer

pytestmark = pytest.mark.slow
ROUNDS = 4


@pytest.fixture
async def provider() -> AsyncIterator[FakeProvider]:
    fake = FakeProvider(lambda: datetime.now(UTC))  # real servers use the real clock
    await fake.start()
    yield fake
    await fake.close()


async def test_a_token_signs_in_once_across_two_processes(
    serve: StartServer, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    env = {
        "AUTH_OIDC_PROVIDERS": "corp",
        "AUTH_OIDC_CORP_ISSUER": provider.issuer,
        "AUTH_OIDC_CORP_CLIENT_IDS": CLIENT_ID,
    }
    a, b = await asyncio.gather(serve("a", **env), serve("b", **env))
    async with a.client() as http_a, b.client() as http_b:
        for n in range(ROUNDS):
            body = {"provider": "corp", "id_token": provider.token(jti=str(n))}
            responses = await asyncio.gather(
                *(http.post("/v1/login/idtoken", json=body) for http in [http_a, http_b] * 2)
            )
            statuses = sorted(response.status for response in responses)
            for response in responses:
                response.release()
            assert statuses == [200, 401, 401, 401], statuses
    assert await db.fetchval("SELECT count(*) FROM session") == ROUNDS
    assert await db.fetchval("SELECT count(*) FROM identity") == 1
    a.assert_no_unhandled_errors()
    b.assert_no_unhandled_errors()
