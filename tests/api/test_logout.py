"""POST /v1/logout: scopes, idempotence, access or refresh token."""

from __future__ import annotations

from typing import Any

from helpers import Client, bearer, error_of, login, refresh, signed_in


async def _me(client: Client, tokens: dict[str, Any]) -> int:
    return (await client.get("/v1/me", headers=bearer(tokens))).status


async def test_local_logout_ends_only_the_callers_session(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    response = await client.post("/v1/logout", headers=bearer(phone))
    assert response.status == 204
    assert await _me(client, phone) == 401  # immediately, though the JWT has not expired
    assert (await refresh(client, phone["refresh_token"])).status == 401
    assert await _me(client, laptop) == 200


async def test_others_logout_keeps_the_callers_session(client: Client) -> None:
    phone = await signed_in(client)
    laptop, tablet = await login(client), await login(client)
    response = await client.post("/v1/logout", json={"scope": "others"}, headers=bearer(phone))
    assert response.status == 204
    assert [await _me(client, t) for t in (phone, laptop, tablet)] == [200, 401, 401]


async def test_global_logout_ends_every_session(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    other_user = await signed_in(client, "bob@example.com")
    response = await client.post("/v1/logout", json={"scope": "global"}, headers=bearer(phone))
    assert response.status == 204
    assert [await _me(client, t) for t in (phone, laptop, other_user)] == [401, 401, 200]


async def test_logout_is_idempotent(client: Client) -> None:
    tokens = await signed_in(client)
    for _ in range(2):
        assert (await client.post("/v1/logout", headers=bearer(tokens))).status == 204
    for _ in range(2):
        response = await client.post("/v1/logout", json={"refresh_token": tokens["refresh_token"]})
        assert response.status == 204


async def test_an_ended_sessions_token_cannot_end_the_others(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    await client.post("/v1/logout", headers=bearer(phone))
    response = await client.post("/v1/logout", json={"scope": "global"}, headers=bearer(phone))
    assert response.status == 204
    assert await _me(client, laptop) == 200


async def test_logout_with_a_refresh_token(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    response = await client.post("/v1/logout", json={"refresh_token": phone["refresh_token"]})
    assert response.status == 204
    assert await _me(client, phone) == 401 and await _me(client, laptop) == 200
    response = await client.post(
        "/v1/logout", json={"refresh_token": laptop["refresh_token"], "scope": "global"}
    )
    assert response.status == 204 and await _me(client, laptop) == 401


async def test_a_spent_refresh_token_still_names_its_session(client: Client) -> None:
    tokens = await signed_in(client)
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    response = await client.post("/v1/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 204 and await _me(client, rotated) == 401


async def test_logout_without_valid_credentials_is_401(client: Client) -> None:
    tokens = await signed_in(client)
    cases: list[dict[str, Any]] = [
        {},
        {"json": {"refresh_token": "garbage"}},
        {"headers": {"Authorization": "Bearer not-a-jwt"}},
        {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
        {"headers": {"Authorization": "Bearer " + tokens["access_token"][:-4] + "AAAA"}},
    ]
    for case in cases:
        response = await client.post("/v1/logout", **case)
        assert response.status == 401, case
        assert await error_of(response) == "invalid_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert await _me(client, tokens) == 200


async def test_expired_access_token_cannot_log_out(client: Client, clock: Any) -> None:
    tokens = await signed_in(client)
    clock.advance(900 + 31)  # past exp and the 30 s leeway
    response = await client.post("/v1/logout", headers=bearer(tokens))
    assert response.status == 401


async def test_bad_scope_is_422(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.post("/v1/logout", json={"scope": "everything"}, headers=bearer(tokens))
    assert response.status == 422 and "scope" in (await response.json())["fields"]
