"""POST /oauth/revoke (RFC 7009): either token ends its session; 200 whatever the token."""

from __future__ import annotations

import asyncpg
from helpers import Client, bearer, signed_in
from oauth_helpers import oauth_error_of, oauth_refresh
from tests_support import forge_access_token

from service.domain.tokens import RefreshToken


async def _revoke(client: Client, token: str, hint: str | None = None) -> int:
    form = {"token": token} | ({"token_type_hint": hint} if hint else {})
    response = await client.post("/oauth/revoke", data=form)
    assert response.headers["Cache-Control"] == "no-store"
    return response.status


async def test_refresh_token_ends_its_session(client: Client, db: asyncpg.Connection) -> None:
    tokens = await signed_in(client)
    other = await signed_in(client, "bob@example.com")
    assert await _revoke(client, tokens["refresh_token"], "refresh_token") == 200
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401
    assert (await oauth_refresh(client, tokens["refresh_token"])).status == 400
    reason = await db.fetchval(
        "SELECT revoke_reason FROM session WHERE id = $1::uuid", tokens["session_id"]
    )
    assert reason == "logout"
    assert (await client.get("/v1/me", headers=bearer(other))).status == 200


async def test_access_token_ends_its_session_whatever_the_hint(client: Client) -> None:
    tokens = await signed_in(client)
    assert await _revoke(client, tokens["access_token"], "refresh_token") == 200
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401
    assert (await oauth_refresh(client, tokens["refresh_token"])).status == 400


async def test_unknown_forged_and_repeated_tokens_are_200(client: Client) -> None:
    tokens = await signed_in(client)
    forged = forge_access_token({"sub": tokens["user"]["id"]}, secret=b"x" * 32)
    for token in ["nope", "a.b.c", RefreshToken.new().encode(), forged, "x" * 50_000]:
        assert await _revoke(client, token) == 200
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 200
    assert await _revoke(client, tokens["refresh_token"]) == 200
    assert await _revoke(client, tokens["refresh_token"]) == 200  # already ended: still 200


async def test_missing_token_is_invalid_request(client: Client) -> None:
    response = await client.post("/oauth/revoke", data={"token_type_hint": "access_token"})
    assert response.status == 400 and await oauth_error_of(response) == "invalid_request"
