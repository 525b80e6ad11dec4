"""A real server process whose database goes away and comes back.

The server reaches PostgreSQL through a TcpProxy owned by the test (the shared PostgreSQL itself
is never touched). While the proxy is broken, every route that needs the database answers
`503 service_unavailable` in the contract's error shape, within a bound set by the pool and
timeout settings; /healthz stays 200 and /readyz is 503. Once the proxy is mended, the same
process serves again, and everything committed before the outage is still there.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest
from helpers import PASSWORD, bearer, signed_in
from servers import ServerProcess, StartServer, answer
from sqlalchemy.engine import make_url
from tcpproxy import Mode, TcpProxy

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-key-for-the-outage-tests"
# Short timeouts keep the test quick. With them a request answers within about
# connect + 2 x statement = 3 s (see Settings); five times that is what "it hangs" means here.
DB_TIMEOUTS = {"ROTOR_DB_CONNECT_TIMEOUT": "1", "ROTOR_DB_STATEMENT_TIMEOUT": "1"}
ANSWER_BOUND = aiohttp.ClientTimeout(total=15)
RECOVERY_ATTEMPTS = 100


@pytest.fixture
async def proxy(database_url: str) -> AsyncIterator[TcpProxy]:
    url = make_url(database_url)
    # The embedded PostgreSQL listens on a Unix socket named by the `host` query parameter.
    socket_folder = url.query.get("host")
    host = url.host or (socket_folder if isinstance(socket_folder, str) else "127.0.0.1")
    port = url.port or int(str(url.query.get("port", 5432)))
    proxy = TcpProxy(host, port)
    await proxy.start()
    yield proxy
    await proxy.close()


def _through(proxy: TcpProxy, database_url: str) -> str:
    url = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    url = url.difference_update_query(["host", "port"])
    return url.render_as_string(hide_password=False)


async def _answer(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    return await answer(http, method, path, timeout=ANSWER_BOUND, **kwargs)


def _database_routes(
    tokens: dict[str, Any], other_session: str, user_id: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that needs the database, with a request it would otherwise serve."""
    admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
    user = bearer(tokens)
    refresh_token = {"refresh_token": tokens["refresh_token"]}
    return [
        ("POST", "/v1/register", {"json": {"email": "new@example.com", "password": PASSWORD}}),
        ("POST", "/v1/login", {"json": {"email": "ada@example.com", "password": PASSWORD}}),
        ("POST", "/v1/refresh", {"json": refresh_token}),
        ("POST", "/v1/logout", {"headers": user}),
        ("POST", "/v1/logout", {"json": refresh_token}),
        ("GET", "/v1/me", {"headers": user}),
        ("DELETE", "/v1/me", {"headers": user, "json": {"password": PASSWORD}}),
        ("GET", "/v1/sessions", {"headers": user}),
        ("DELETE", f"/v1/sessions/{other_session}", {"headers": user}),
        (
            "POST",
            "/v1/password",
            {"headers": user, "json": {"current_password": PASSWORD, "new_password": "x" * 12}},
        ),
        ("GET", f"/v1/admin/users/{user_id}/sessions", {"headers": admin}),
        ("DELETE", f"/v1/admin/users/{user_id}/sessions", {"headers": admin}),
        ("POST", f"/v1/admin/users/{user_id}/disable", {"headers": admin}),
        ("POST", f"/v1/admin/users/{user_id}/enable", {"headers": admin}),
        ("GET", "/readyz", {}),
    ]


async def _before_outage(http: aiohttp.ClientSession) -> tuple[dict[str, Any], str]:
    """A user with two sessions, one of them refreshed: state the outage must not lose."""
    login = await signed_in(http)
    async with http.post("/v1/refresh", json={"refresh_token": login["refresh_token"]}) as r:
        assert r.status == 200
        tokens: dict[str, Any] = await r.json()
    async with http.post("/v1/login", json={"email": "ada@example.com", "password": PASSWORD}) as r:
        assert r.status == 200
        other_session = (await r.json())["session_id"]
    # Several pooled connections, so the outage finds some idle in the pool.
    ready = await asyncio.gather(*(_answer(http, "GET", "/readyz") for _ in range(8)))
    assert [status for status, _, _ in ready] == [200] * 8
    return tokens, other_session


async def _wait_until_ready(http: aiohttp.ClientSession) -> int:
    """Poll /readyz until it answers 200; returns how many 503s it answered first."""
    for attempt in range(RECOVERY_ATTEMPTS):
        status, _, _ = await _answer(http, "GET", "/readyz")
        if status == 200:
            return attempt
        assert status == 503
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not become ready after the database came back")


@pytest.mark.parametrize("outage", ["refuse", "reset", "blackhole"])
async def test_database_outage_is_503_and_the_same_process_recovers(
    outage: Mode,
    serve: StartServer,
    proxy: TcpProxy,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    server: ServerProcess = await serve(
        "outage", database=_through(proxy, database_url), AUTH_ADMIN_KEY=ADMIN_KEY, **DB_TIMEOUTS
    )
    async with server.client() as http:
        tokens, other_session = await _before_outage(http)
        committed = await db.fetch("SELECT id FROM refresh_token ORDER BY id")

        await proxy.set_mode(outage)
        routes = _database_routes(tokens, other_session, tokens["user"]["id"])
        answers = await asyncio.gather(
            *(_answer(http, method, path, **kwargs) for method, path, kwargs in routes)
        )
        for (method, path, _), (status, headers, body) in zip(routes, answers, strict=True):
            assert status == 503, (method, path, status, body)
            assert headers["Content-Type"].startswith("application/json")
            assert set(body) == {"error", "message"}, body
            assert body["error"] == "service_unavailable"
        assert (await _answer(http, "GET", "/healthz"))[0] == 200
        assert (await _answer(http, "GET", "/.well-known/jwks.json"))[0] == 200

        await proxy.set_mode("up")
        await _wait_until_ready(http)
        # Nothing was lost, and nothing was written while the database was away.
        assert await db.fetch("SELECT id FROM refresh_token ORDER BY id") == committed
        assert await db.fetchval('SELECT count(*) FROM "user"') == 1
        assert await db.fetchval("SELECT count(*) FROM session WHERE revoked_at IS NULL") == 2
        status, _, me = await _answer(http, "GET", "/v1/me", headers=bearer(tokens))
        assert status == 200
        assert me["session_id"] == tokens["session_id"]
        status, _, rotated = await _answer(
            http, "POST", "/v1/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert status == 200
        assert rotated["session_id"] == tokens["session_id"]
        status, _, _ = await _answer(
            http, "POST", "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert status == 200
        status, _, sessions = await _answer(http, "GET", "/v1/sessions", headers=bearer(rotated))
        assert status == 200
        assert {s["id"] for s in sessions["sessions"]} >= {tokens["session_id"], other_session}
    server.assert_no_unhandled_errors()
