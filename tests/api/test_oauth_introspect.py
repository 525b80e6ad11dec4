"""POST /oauth/introspect (RFC 7662): configured clients only, session state at once."""

from __future__ import annotations

import jwt
import pytest
from conftest import MakeClient
from helpers import Client, bearer, signed_in
from oauth_helpers import CLIENTS_ENV, INTROSPECTOR, basic, introspect, oauth_error_of

from service.domain.tokens import RefreshToken
from service.settings.oauth import load_oauth_settings


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client(oauth=load_oauth_settings({"AUTH_INTROSPECTION_CLIENTS": CLIENTS_ENV}))


async def test_live_access_token(client: Client) -> None:
    tokens = await signed_in(client)
    answer = await introspect(client, tokens["access_token"])
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert answer == {
        "active": True,
        "sub": tokens["user"]["id"],
        "sid": tokens["session_id"],
        "exp": claims["exp"],
        "iat": claims["iat"],
        "iss": "rotor",
        "aud": "rotor",
        "jti": claims["jti"],
        "token_type": "access_token",
    }


async def test_access_token_of_ended_session_is_inactive_at_once(client: Client) -> None:
    tokens = await signed_in(client)
    assert (await introspect(client, tokens["access_token"]))["active"] is True
    assert (await client.post("/v1/logout", headers=bearer(tokens))).status == 204
    assert await introspect(client, tokens["access_token"]) == {"active": False}


async def test_live_refresh_token_and_after_rotation(client: Client, clock: object) -> None:
    tokens = await signed_in(client)
    answer = await introspect(client, tokens["refresh_token"])
    expiry = int(clock.now.timestamp()) + 3600  # type: ignore[attr-defined]  # idle lifetime
    assert answer == {
        "active": True,
        "sub": tokens["user"]["id"],
        "sid": tokens["session_id"],
        "exp": expiry,
        "iss": "rotor",
        "token_type": "refresh_token",
    }
    response = await client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    rotated = await response.json()
    assert await introspect(client, tokens["refresh_token"]) == {"active": False}  # spent
    assert (await introspect(client, rotated["refresh_token"]))["active"] is True
    clock.advance(3601)  # type: ignore[attr-defined]
    assert await introspect(client, rotated["refresh_token"]) == {"active": False}


async def test_anything_else_is_inactive(client: Client) -> None:
    tokens = await signed_in(client)
    token = RefreshToken.parse(tokens["refresh_token"])
    assert token is not None
    wrong_secret = RefreshToken(token.id, b"\x00" * 32).encode()
    for raw in ["nope", "a.b.c", RefreshToken.new().encode(), wrong_secret, "x" * 50_000]:
        assert await introspect(client, raw) == {"active": False}


async def test_client_authentication(client: Client) -> None:
    tokens = await signed_in(client)
    client_id, secret = INTROSPECTOR
    bad = [
        {},
        basic(client_id, secret + "x"),
        basic("other", secret),
        {"Authorization": "Basic !!!"},
        {"Authorization": f"Bearer {tokens['access_token']}"},
    ]
    for headers in bad:
        response = await client.post(
            "/oauth/introspect", data={"token": tokens["access_token"]}, headers=headers
        )
        assert response.status == 401, headers
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert await oauth_error_of(response) == "invalid_client"
    # RFC 6749 section 2.3.1 form-encodes id and secret before Base64; both forms are accepted.
    assert (await introspect(client, tokens["access_token"], ("orders%2Dapi", secret)))["active"]
    response = await client.post("/oauth/introspect", data={}, headers=basic(*INTROSPECTOR))
    assert response.status == 400 and await oauth_error_of(response) == "invalid_request"


async def test_without_configured_clients_the_route_is_404(make_client: MakeClient) -> None:
    plain = await make_client()
    response = await plain.post(
        "/oauth/introspect", data={"token": "x"}, headers=basic(*INTROSPECTOR)
    )
    assert response.status == 404 and await oauth_error_of(response) == "not_found"
