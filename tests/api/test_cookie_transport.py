"""Cookie transport for browsers: the refresh token in an HttpOnly cookie, CSRF header required."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from helpers import PASSWORD, Client, bearer, error_of, register

CSRF = {"X-CSRF-Token": "1"}


def _cookie(response: Any) -> Any:
    header = response.headers.getall("Set-Cookie")
    assert len(header) == 1, header
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(header[0])
    return parsed["refresh_token"], header[0]


async def _cookie_login(client: Client) -> tuple[dict[str, Any], str]:
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    assert response.status == 200
    morsel, _ = _cookie(response)
    return await response.json(), morsel.value


async def test_cookie_login_sets_the_cookie_not_the_body(client: Client) -> None:
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    body = await response.json()
    assert "refresh_token" not in body and body["refresh_expires_in"] == 3600
    morsel, _ = _cookie(response)
    assert morsel["httponly"] and morsel["secure"]
    assert morsel["samesite"] == "Strict" and morsel["path"] == "/v1"
    assert morsel["max-age"] == "3600"
    assert morsel.value.count(".") == 1


async def test_secure_flag_can_be_turned_off_for_development(make_client: Any) -> None:
    client = await make_client(cookie_secure=False)
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    morsel, raw = _cookie(response)
    assert not morsel["secure"] and "Secure" not in raw and morsel["httponly"]


async def test_refresh_by_cookie_rotates_the_cookie(client: Client) -> None:
    _, token = await _cookie_login(client)
    client.session.cookie_jar.clear()
    response = await client.post(
        "/v1/refresh", headers={**CSRF, "Cookie": f"refresh_token={token}"}
    )
    assert response.status == 200
    body = await response.json()
    assert "refresh_token" not in body
    morsel, _ = _cookie(response)
    assert morsel.value != token
    # The old cookie is now spent: outside the grace window it would be reuse.
    assert (await client.post("/v1/refresh", json={"refresh_token": morsel.value})).status == 200


async def test_cookie_requests_without_the_csrf_header_are_403(client: Client) -> None:
    tokens, token = await _cookie_login(client)
    client.session.cookie_jar.clear()
    cookie = {"Cookie": f"refresh_token={token}"}
    for path in ["/v1/refresh", "/v1/logout"]:
        response = await client.post(path, headers=cookie)
        assert response.status == 403, path
        assert await error_of(response) == "csrf_failed"
    # Nothing happened: the session and its token still work.
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 200
    response = await client.post("/v1/refresh", headers={**cookie, **CSRF})
    assert response.status == 200


async def test_logout_by_cookie_clears_it(client: Client) -> None:
    tokens, token = await _cookie_login(client)
    client.session.cookie_jar.clear()
    response = await client.post("/v1/logout", headers={**CSRF, "Cookie": f"refresh_token={token}"})
    assert response.status == 204
    morsel, _ = _cookie(response)
    assert morsel.value == "" and morsel["max-age"] == "0" and morsel["path"] == "/v1"
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401


async def test_a_body_token_wins_over_the_cookie_and_needs_no_csrf(client: Client) -> None:
    _, token = await _cookie_login(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    body_token = (await response.json())["refresh_token"]
    response = await client.post(
        "/v1/refresh",
        json={"refresh_token": body_token},
        headers={"Cookie": f"refresh_token={token}"},
    )
    assert response.status == 200 and "refresh_token" in await response.json()
    assert "Set-Cookie" not in response.headers
