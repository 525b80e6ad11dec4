"""GET /oauth/userinfo: the caller's sub, email and email_verified (Bearer)."""

from __future__ import annotations

from helpers import Client, bearer, signed_in
from oauth_helpers import oauth_error_of


async def test_userinfo_of_the_caller(client: Client) -> None:
    tokens = await signed_in(client, "Ada@Example.com")
    response = await client.get("/oauth/userinfo", headers=bearer(tokens))
    assert response.status == 200
    assert await response.json() == {
        "sub": tokens["user"]["id"],
        "email": "Ada@Example.com",
        "email_verified": False,
    }


async def test_invalid_or_ended_token_is_401(client: Client) -> None:
    tokens = await signed_in(client)
    await client.post("/v1/logout", headers=bearer(tokens))
    for headers in [{}, {"Authorization": "Bearer nope"}, bearer(tokens)]:
        response = await client.get("/oauth/userinfo", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert await oauth_error_of(response) == "invalid_token"
