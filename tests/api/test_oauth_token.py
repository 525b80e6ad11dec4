"""POST /oauth/token: the RFC 6749 refresh grant on the rotation engine of /v1/refresh."""

from __future__ import annotations

import asyncio

import asyncpg
from helpers import Client, bearer, error_of, refresh, signed_in
from oauth_helpers import oauth_error_of, oauth_refresh

from service.domain.tokens import RefreshToken


async def test_refresh_grant_rotates_and_is_not_cached(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    response = await oauth_refresh(client, tokens["refresh_token"], client_id="ios-app")
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["refresh_token"] != tokens["refresh_token"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    child = RefreshToken.parse(body["refresh_token"])
    parent = RefreshToken.parse(tokens["refresh_token"])
    assert child is not None and parent is not None
    lineage = await db.fetchval("SELECT parent_id FROM refresh_token WHERE id = $1", child.id)
    assert lineage == parent.id
    me = await client.get("/v1/me", headers=bearer(body))
    assert me.status == 200 and (await me.json())["session_id"] == tokens["session_id"]


async def test_one_chain_across_both_routes_grace_included(client: Client, clock: object) -> None:
    """The same rotation: a grace retry on /v1/refresh of a token spent by /oauth/token hands
    back the very child /oauth/token issued, and the reverse."""
    tokens = await signed_in(client)
    first = await (await oauth_refresh(client, tokens["refresh_token"])).json()
    clock.advance(5)  # type: ignore[attr-defined]
    retry = await (await refresh(client, tokens["refresh_token"])).json()
    assert retry["refresh_token"] == first["refresh_token"]
    second = await (await refresh(client, first["refresh_token"])).json()
    again = await (await oauth_refresh(client, first["refresh_token"])).json()
    assert again["refresh_token"] == second["refresh_token"]


async def test_concurrent_refreshes_of_one_token_share_one_child(client: Client) -> None:
    tokens = await signed_in(client)
    responses = await asyncio.gather(
        *(oauth_refresh(client, tokens["refresh_token"]) for _ in range(8))
    )
    assert [response.status for response in responses] == [200] * 8
    children = {(await response.json())["refresh_token"] for response in responses}
    assert len(children) == 1


async def test_reused_refresh_token_is_invalid_grant_and_revokes_session(
    client: Client, clock: object
) -> None:
    tokens = await signed_in(client)
    rotated = await (await oauth_refresh(client, tokens["refresh_token"])).json()
    clock.advance(11)  # past AUTH_REUSE_GRACE
    response = await oauth_refresh(client, tokens["refresh_token"])
    assert response.status == 400 and await oauth_error_of(response) == "invalid_grant"
    # The whole session is gone: its newest token and its access token fail too.
    newest = await oauth_refresh(client, rotated["refresh_token"])
    assert newest.status == 400 and await oauth_error_of(newest) == "invalid_grant"
    me = await client.get("/v1/me", headers=bearer(rotated))
    assert me.status == 401 and await error_of(me) == "invalid_token"


async def test_unknown_expired_and_malformed_tokens_are_invalid_grant(
    client: Client, clock: object
) -> None:
    tokens = await signed_in(client)
    for token in ["nope", "x" * 50_000, RefreshToken.new().encode()]:
        response = await oauth_refresh(client, token)
        assert response.status == 400 and await oauth_error_of(response) == "invalid_grant"
    clock.advance(3601)  # past the idle lifetime
    response = await oauth_refresh(client, tokens["refresh_token"])
    assert response.status == 400 and await oauth_error_of(response) == "invalid_grant"


async def test_request_errors(client: Client) -> None:
    tokens = await signed_in(client)
    token = tokens["refresh_token"]
    cases = [
        ({"grant_type": "password", "username": "a", "password": "b"}, "unsupported_grant_type"),
        ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
        ({"refresh_token": token}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": ""}, "invalid_request"),
    ]
    for form, code in cases:
        response = await client.post("/oauth/token", data=form)
        assert response.status == 400, form
        assert await oauth_error_of(response) == code, form
    repeated = f"grant_type=refresh_token&refresh_token={token}&refresh_token={token}"
    for body, content_type in [
        (repeated, "application/x-www-form-urlencoded"),
        (b"grant_type=refresh_token&refresh_token=\xff", "application/x-www-form-urlencoded"),
        ('{"grant_type": "refresh_token"}', "application/json"),
    ]:
        response = await client.post(
            "/oauth/token", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == 400 and await oauth_error_of(response) == "invalid_request"
    # None of those spent the token.
    assert (await oauth_refresh(client, token)).status == 200


async def test_oversized_body_and_wrong_method(client: Client) -> None:
    response = await client.post(
        "/oauth/token",
        data="refresh_token=" + "a" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 413 and await oauth_error_of(response) == "payload_too_large"
    response = await client.get("/oauth/token")
    assert response.status == 405 and "POST" in response.headers["Allow"]
