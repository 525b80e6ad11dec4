"""Two real server processes on one database: races that only row locks and constraints in
PostgreSQL can settle, since the processes share nothing else."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from helpers import PASSWORD, bearer, signed_in
from servers import ServerProcess, StartServer

from service.domain.tokens import RefreshToken

pytestmark = pytest.mark.slow

REFRESH_ROUNDS = 6
REFRESHES_PER_ROUND = 16
LOGOUT_ROUNDS = 12
REGISTRATION_ROUNDS = 25


async def _two_servers(serve: StartServer) -> tuple[ServerProcess, ServerProcess]:
    a, b = await asyncio.gather(serve("a"), serve("b"))
    return a, b


async def _call(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, path, **kwargs) as response:
        body = await response.json() if response.status != 204 else {}
        return response.status, body


def _token_id(raw: str) -> uuid.UUID:
    token = RefreshToken.parse(raw)
    assert token is not None
    return token.id


async def test_concurrent_refreshes_over_two_processes_issue_one_token(
    serve: StartServer, db: asyncpg.Connection
) -> None:
    a, b = await _two_servers(serve)
    async with a.client() as http_a, b.client() as http_b:
        token = (await signed_in(http_a))["refresh_token"]
        for _ in range(REFRESH_ROUNDS):
            # Half the requests go to each process; all carry the same token.
            clients = [http_a, http_b] * (REFRESHES_PER_ROUND // 2)
            answers = await asyncio.gather(
                *(
                    _call(http, "POST", "/v1/refresh", json={"refresh_token": token})
                    for http in clients
                )
            )
            assert [status for status, _ in answers] == [200] * REFRESHES_PER_ROUND, answers
            issued = {body["refresh_token"] for _, body in answers}
            assert len(issued) == 1
            children = await db.fetch(
                "SELECT id, spent_at FROM refresh_token WHERE parent_id = $1", _token_id(token)
            )
            (child,) = children
            new_token = issued.pop()
            assert child["id"] == _token_id(new_token)
            assert child["spent_at"] is None
            token = new_token
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == REFRESH_ROUNDS + 1
    assert await db.fetchval("SELECT count(*) FROM refresh_token WHERE spent_at IS NULL") == 1
    a.assert_no_unhandled_errors()
    b.assert_no_unhandled_errors()


async def _race_logout_with_refreshes(
    http_a: aiohttp.ClientSession, http_b: aiohttp.ClientSession, round_: int
) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]], list[int]]:
    """Log in, then fire refreshes of the login's token at both processes together with a
    logout (by refresh token on even rounds, by access token on odd ones)."""
    login = await _call(
        http_a, "POST", "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login[0] == 200
    tokens = login[1]
    refresh_body = {"refresh_token": tokens["refresh_token"]}
    if round_ % 2 == 0:
        logout = _call(http_b, "POST", "/v1/logout", json=refresh_body)
    else:
        logout = _call(http_b, "POST", "/v1/logout", headers=bearer(tokens))
    refreshes = [
        _call(http, "POST", "/v1/refresh", json=refresh_body) for http in [http_a, http_b] * 3
    ]
    logout_answer, *refresh_answers = await asyncio.gather(logout, *refreshes)
    return tokens, refresh_answers, [logout_answer[0]]


async def test_logout_racing_refreshes_leaves_no_live_token(
    serve: StartServer, db: asyncpg.Connection
) -> None:
    """A "live" refresh token is one that can still refresh: unspent, unexpired, in a session
    that is not revoked. After logout has answered 204, its session must hold none, whichever
    process committed first; and nothing may have been issued in it after its revocation."""
    a, b = await _two_servers(serve)
    async with a.client() as http_a, b.client() as http_b:
        await signed_in(http_a)
        for round_ in range(LOGOUT_ROUNDS):
            tokens, refreshes, logouts = await _race_logout_with_refreshes(http_a, http_b, round_)
            assert logouts == [204]
            statuses = {status for status, _ in refreshes}
            assert statuses <= {200, 401}, refreshes
            assert all(
                body["error"] == "invalid_grant" for status, body in refreshes if status == 401
            )
            handed_out = [tokens] + [body for status, body in refreshes if status == 200]
            # Every refresh that won handed out one and the same child.
            assert len({body["refresh_token"] for body in handed_out[1:]}) <= 1

            # Through the API: no refresh token or access token of the session works any more.
            for body in handed_out:
                status, answer = await _call(
                    http_a, "POST", "/v1/refresh", json={"refresh_token": body["refresh_token"]}
                )
                assert (status, answer["error"]) == (401, "invalid_grant")
                assert (await _call(http_b, "GET", "/v1/me", headers=bearer(body)))[0] == 401

            # In the database: the session is revoked, holds no token issued after that, and
            # its chain is one login token plus at most one child.
            session_id = uuid.UUID(tokens["session_id"])
            revoked_at = await db.fetchval(
                "SELECT revoked_at FROM session WHERE id = $1", session_id
            )
            assert revoked_at is not None
            rows = await db.fetch(
                "SELECT id, parent_id, issued_at, spent_at FROM refresh_token"
                " WHERE session_id = $1 ORDER BY issued_at",
                session_id,
            )
            assert all(row["issued_at"] <= revoked_at for row in rows), (revoked_at, rows)
            assert sum(row["spent_at"] is None for row in rows) == 1
            login_id = _token_id(tokens["refresh_token"])
            assert rows[0]["id"] == login_id
            assert len(rows) <= 2
            # The child exists exactly when some refresh won the race against the logout.
            assert (len(rows) == 2) == (200 in statuses)
            if len(rows) == 2:
                assert rows[1]["id"] == _token_id(handed_out[1]["refresh_token"])
    a.assert_no_unhandled_errors()
    b.assert_no_unhandled_errors()


async def test_racing_registrations_of_one_email_give_201_and_409(
    serve: StartServer, db: asyncpg.Connection
) -> None:
    a, b = await _two_servers(serve)
    async with a.client() as http_a, b.client() as http_b:
        for round_ in range(REGISTRATION_ROUNDS):
            # The same address in two spellings: one account per case-insensitive email.
            answers = await asyncio.gather(
                _call(
                    http_a,
                    "POST",
                    "/v1/register",
                    json={"email": f"Race{round_}@Example.com", "password": PASSWORD},
                ),
                _call(
                    http_b,
                    "POST",
                    "/v1/register",
                    json={"email": f"race{round_}@example.com", "password": PASSWORD},
                ),
            )
            assert sorted(status for status, _ in answers) == [201, 409], answers
            (conflict,) = [body for status, body in answers if status == 409]
            assert conflict["error"] == "email_taken"
    rows = await db.fetch('SELECT lower(email) AS email, count(*) AS n FROM "user" GROUP BY 1')
    assert len(rows) == REGISTRATION_ROUNDS
    assert all(row["n"] == 1 for row in rows)
    a.assert_no_unhandled_errors()
    b.assert_no_unhandled_errors()
