"""Attacks on sessions and on the server itself that held, replayed: the 20-way refresh race,
guessed refresh secrets revoking nothing, the admin key compared whole, 10 MB bodies, and 500
idle connections while /v1/me is still served."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import uuid
from typing import Any

import asyncpg
from helpers import Client, bearer, refresh, signed_in

from service.domain.tokens import RefreshToken
from service.web import admin

ADMIN_KEY = "admin-key-that-is-long-enough-0123456789"
MB = 1024 * 1024


async def test_twenty_parallel_refreshes_get_one_and_the_same_token(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    answers = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(20)))
    assert [answer.status for answer in answers] == [200] * 20
    issued = {(await answer.json())["refresh_token"] for answer in answers}
    assert len(issued) == 1
    live = await db.fetchval("SELECT count(*) FROM refresh_token WHERE spent_at IS NULL")
    assert live == 1
    assert (await refresh(client, issued.pop())).status == 200


async def test_guessed_refresh_secrets_revoke_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    real = RefreshToken.parse(tokens["refresh_token"])
    assert real is not None
    guesses = [
        RefreshToken(real.id, secrets.token_bytes(32)).encode(),  # the right id, a guessed secret
        RefreshToken(uuid.uuid4(), real.secret).encode(),
        tokens["refresh_token"][:-1] + ("A" if tokens["refresh_token"][-1] != "A" else "B"),
        tokens["refresh_token"].upper(),
        tokens["refresh_token"] + "\n",
    ]
    for guess in guesses:
        assert (await refresh(client, guess)).status == 401
        logout = await client.post("/v1/logout", json={"refresh_token": guess, "scope": "global"})
        assert logout.status == 401
    assert await db.fetchval("SELECT count(*) FROM session WHERE revoked_at IS NOT NULL") == 0
    assert (await client.get("/v1/me", headers=bearer(tokens))).ok
    assert (await refresh(client, tokens["refresh_token"])).status == 200


async def test_the_admin_key_is_compared_whole_and_in_constant_time(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    user = (await signed_in(client))["user"]
    path = f"/v1/admin/users/{user['id']}/sessions"
    for wrong in (
        ADMIN_KEY[:-1],
        ADMIN_KEY + "x",
        ADMIN_KEY[:-1] + "X",
        ADMIN_KEY.upper(),
        ADMIN_KEY[:16],
        "",
        "\u00e9" * len(ADMIN_KEY),
    ):
        response = await client.get(path, headers={"Authorization": f"Bearer {wrong}"})
        assert response.status == 401, wrong
    right = await client.get(path, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert right.status == 200
    # No early exit on the first differing byte.
    assert "hmac.compare_digest" in inspect.getsource(admin.require_admin_key)


async def test_ten_megabyte_bodies_are_413(client: Client) -> None:
    big = b'{"email": "ada@example.com", "password": "' + b"x" * (10 * MB) + b'"}'
    for path in ("/v1/register", "/v1/login", "/v1/refresh"):
        with contextlib.suppress(ConnectionError):
            response = await client.post(
                path, data=big, headers={"Content-Type": "application/json"}
            )
            assert response.status == 413, path

    async def chunks() -> Any:
        for _ in range(10 * 16):
            yield b" " * (64 * 1024)

    response = await client.post(
        "/v1/login", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413
    assert (await client.get("/healthz")).ok


async def test_five_hundred_idle_connections_do_not_stop_service(client: Client) -> None:
    tokens = await signed_in(client)
    idle = [await asyncio.open_connection("127.0.0.1", client.server.port) for _ in range(500)]
    try:
        # Some of them half-way through a request line, too.
        for _, writer in idle[::2]:
            writer.write(b"GET /v1/me HTTP/1.1\r\nHost: x\r\n")
        responses = await asyncio.gather(
            *(client.get("/v1/me", headers=bearer(tokens)) for _ in range(20))
        )
        assert [response.status for response in responses] == [200] * 20
    finally:
        for _, writer in idle:
            writer.close()
