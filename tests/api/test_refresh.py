"""POST /v1/refresh: rotation, grace retries, reuse detection, expiry, concurrency."""

from __future__ import annotations

import asyncio

import asyncpg
from conftest import FakeClock, MakeClient
from helpers import Client, bearer, error_of, refresh, signed_in

from service.domain.tokens import RefreshToken


async def test_refresh_rotates_and_records_lineage(client: Client, db: asyncpg.Connection) -> None:
    tokens = await signed_in(client)
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 200
    rotated = await response.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["session_id"] == tokens["session_id"]
    assert rotated["token_type"] == "Bearer"
    assert rotated["user"] == tokens["user"]
    assert response.headers["Cache-Control"] == "no-store"
    parent = RefreshToken.parse(tokens["refresh_token"])
    child = RefreshToken.parse(rotated["refresh_token"])
    assert parent is not None and child is not None
    row = await db.fetchrow("SELECT parent_id, spent_at FROM refresh_token WHERE id = $1", child.id)
    assert row["parent_id"] == parent.id and row["spent_at"] is None
    spent = await db.fetchval("SELECT spent_at FROM refresh_token WHERE id = $1", parent.id)
    assert spent is not None
    me = await client.get("/v1/me", headers=bearer(rotated))
    assert me.status == 200


async def test_database_never_holds_a_usable_token(client: Client, db: asyncpg.Connection) -> None:
    tokens = await signed_in(client)
    token = RefreshToken.parse(tokens["refresh_token"])
    assert token is not None
    dump = await db.fetch("SELECT * FROM refresh_token")
    text = repr([dict(row) for row in dump])
    assert token.secret.hex() not in text and tokens["refresh_token"] not in text
    # Presenting what the database stores (the verifier) in place of the secret fails.
    stored = await db.fetchval("SELECT verifier FROM refresh_token WHERE id = $1", token.id)
    forged = RefreshToken(token.id, stored).encode()
    response = await refresh(client, forged)
    assert response.status == 401 and await error_of(response) == "invalid_grant"


async def test_retry_within_grace_returns_the_same_token(client: Client, clock: FakeClock) -> None:
    tokens = await signed_in(client)
    first = await (await refresh(client, tokens["refresh_token"])).json()
    clock.advance(9)
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 200
    retry = await response.json()
    assert retry["refresh_token"] == first["refresh_token"]
    assert retry["access_token"] != first["access_token"]  # a fresh access token (new jti)
    # The retried child is the session's live token: it rotates normally.
    assert (await refresh(client, retry["refresh_token"])).status == 200


async def test_reused_refresh_token_outside_grace_revokes_session(
    client: Client, clock: FakeClock
) -> None:
    tokens = await signed_in(client)
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    clock.advance(11)
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401 and await error_of(response) == "token_reused"
    # Every token of the session now fails, and so does its access token.
    response = await refresh(client, rotated["refresh_token"])
    assert response.status == 401 and await error_of(response) == "invalid_grant"
    assert (await client.get("/v1/me", headers=bearer(rotated))).status == 401


async def test_reused_grandparent_inside_grace_revokes_session(client: Client) -> None:
    tokens = await signed_in(client)
    child = await (await refresh(client, tokens["refresh_token"])).json()
    grandchild = await (await refresh(client, child["refresh_token"])).json()
    # The grandparent was not spent by the most recent rotation: theft, even within seconds.
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401 and await error_of(response) == "token_reused"
    assert (await refresh(client, grandchild["refresh_token"])).status == 401


async def test_reused_parent_after_child_rotated_revokes_session(client: Client) -> None:
    tokens = await signed_in(client)
    child = await (await refresh(client, tokens["refresh_token"])).json()
    await refresh(client, child["refresh_token"])
    response = await refresh(client, child["refresh_token"])
    assert response.status == 200  # child was spent by the latest rotation: a retry
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401 and await error_of(response) == "token_reused"


async def test_grace_zero_treats_every_reuse_as_theft(make_client: MakeClient) -> None:
    client = await make_client(reuse_grace=0)
    tokens = await signed_in(client)
    await refresh(client, tokens["refresh_token"])
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401 and await error_of(response) == "token_reused"


async def test_idle_session_expires(client: Client, clock: FakeClock) -> None:
    tokens = await signed_in(client)  # idle TTL 3600 s in the test settings
    clock.advance(3599)
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    assert rotated["refresh_expires_in"] == 3600
    clock.advance(3600)
    response = await refresh(client, rotated["refresh_token"])
    assert response.status == 401 and await error_of(response) == "invalid_grant"


async def test_absolute_session_lifetime_caps_refresh_tokens(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = await make_client(session_idle_ttl=3600, session_max_ttl=5000)
    tokens = await signed_in(client)
    clock.advance(3000)
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    # Never outlives the session: 2000 s left of its absolute 5000, not a fresh idle 3600.
    assert rotated["refresh_expires_in"] == 2000
    assert rotated["expires_in"] == 900
    clock.advance(1900)
    last = await (await refresh(client, rotated["refresh_token"])).json()
    assert last["refresh_expires_in"] == 100 and last["expires_in"] == 100
    clock.advance(100)
    response = await refresh(client, last["refresh_token"])
    assert response.status == 401 and await error_of(response) == "invalid_grant"


async def test_unknown_malformed_and_missing_tokens_are_invalid_grant(client: Client) -> None:
    tokens = await signed_in(client)
    token = RefreshToken.parse(tokens["refresh_token"])
    assert token is not None
    wrong_secret = RefreshToken(token.id, b"\0" * 32).encode()
    for presented in [RefreshToken.new().encode(), "garbage", "", "a.b", wrong_secret]:
        response = await refresh(client, presented)
        assert response.status == 401, presented
        assert await error_of(response) == "invalid_grant"
    for body in [{}, {"refresh_token": None}]:
        response = await client.post("/v1/refresh", json=body)
        assert response.status == 401 and await error_of(response) == "invalid_grant"
    response = await client.post("/v1/refresh")
    assert response.status == 401 and await error_of(response) == "invalid_grant"
    # A wrong secret for a real id is not theft: the session survives.
    assert (await refresh(client, tokens["refresh_token"])).status == 200


async def test_non_string_refresh_token_is_422(client: Client) -> None:
    for value in [123, ["x"], {"a": 1}, True]:
        response = await client.post("/v1/refresh", json={"refresh_token": value})
        assert response.status == 422
        body = await response.json()
        assert body["error"] == "validation_error" and "refresh_token" in body["fields"]


async def test_concurrent_refreshes_yield_one_identical_token(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    responses = await asyncio.gather(*(refresh(client, tokens["refresh_token"]) for _ in range(20)))
    assert [response.status for response in responses] == [200] * 20
    issued = {(await response.json())["refresh_token"] for response in responses}
    assert len(issued) == 1
    parent = RefreshToken.parse(tokens["refresh_token"])
    assert parent is not None
    children = await db.fetchval(
        "SELECT count(*) FROM refresh_token WHERE parent_id = $1", parent.id
    )
    assert children == 1
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == 2


async def test_disabled_users_tokens_stop_refreshing(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    await db.execute('UPDATE "user" SET disabled_at = now()')
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401 and await error_of(response) == "invalid_grant"
