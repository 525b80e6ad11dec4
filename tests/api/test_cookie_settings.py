"""The refresh cookie's attributes (AUTH_COOKIE_SAMESITE/DOMAIN/PATH), the Origin check on
cookie requests, and the answer when no cookie arrived."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

from helpers import PASSWORD, Client, error_of, register

from service.settings.browsers import BrowserSettings

CSRF = {"X-CSRF-Token": "1"}
APP = "http://localhost:3000"
SETTINGS = BrowserSettings(
    cors_origins=frozenset({APP}),
    cookie_samesite="None",
    cookie_domain="example.test",
    cookie_path="/auth/v1",
)


def _set_cookie(response: Any) -> tuple[Any, str]:
    [raw] = response.headers.getall("Set-Cookie")
    parsed: SimpleCookie = SimpleCookie()
    parsed.load(raw)
    return parsed["refresh_token"], raw


def _attributes(morsel: Any) -> tuple[object, ...]:
    return (
        morsel["secure"],
        morsel["httponly"],
        morsel["samesite"],
        morsel["path"],
        morsel["domain"],
    )


async def _cookie_login(client: Client) -> str:
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD, "transport": "cookie"}
    )
    assert response.status == 200
    client.session.cookie_jar.clear()
    morsel, _ = _set_cookie(response)
    return str(morsel.value)


async def test_login_refresh_and_logout_cookies_carry_the_configured_attributes(
    make_client: Any,
) -> None:
    client = await make_client(browsers=SETTINGS)
    token = await _cookie_login(client)
    response = await client.post(
        "/v1/refresh", headers={**CSRF, "Cookie": f"refresh_token={token}"}
    )
    assert response.status == 200
    rotated, _ = _set_cookie(response)
    expected = (True, True, "None", "/auth/v1", "example.test")
    assert _attributes(rotated) == expected
    response = await client.post(
        "/v1/logout", headers={**CSRF, "Cookie": f"refresh_token={rotated.value}"}
    )
    assert response.status == 204
    cleared, raw = _set_cookie(response)
    # The clearing cookie must name the same cookie (same Path and Domain) with the same flags,
    # or the browser keeps the old one.
    assert _attributes(cleared) == expected
    assert cleared.value == "" and cleared["max-age"] == "0" and "1970" in cleared["expires"]
    assert "Secure" in raw and "HttpOnly" in raw


async def test_default_logout_cookie_is_strict_host_only_secure(client: Client) -> None:
    token = await _cookie_login(client)
    response = await client.post("/v1/logout", headers={**CSRF, "Cookie": f"refresh_token={token}"})
    cleared, _ = _set_cookie(response)
    assert _attributes(cleared) == (True, True, "Strict", "/v1", "")


async def test_an_unlisted_foreign_origin_cannot_use_the_cookie_even_with_csrf(
    make_client: Any,
) -> None:
    client = await make_client(browsers=SETTINGS)
    token = await _cookie_login(client)
    cookie = {**CSRF, "Cookie": f"refresh_token={token}"}
    for path in ["/v1/refresh", "/v1/logout"]:
        response = await client.post(path, headers={**cookie, "Origin": "https://evil.example"})
        assert response.status == 403, path
        assert await error_of(response) == "csrf_failed"
    # The request's own origin and a listed one may.
    own = f"http://{client.server.host}:{client.server.port}"
    response = await client.post("/v1/refresh", headers={**cookie, "Origin": own})
    assert response.status == 200
    rotated, _ = _set_cookie(response)
    response = await client.post(
        "/v1/refresh", headers={**CSRF, "Cookie": f"refresh_token={rotated.value}", "Origin": APP}
    )
    assert response.status == 200


async def test_csrf_header_without_a_cookie_says_no_cookie_arrived(client: Client) -> None:
    for path in ["/v1/refresh", "/v1/logout"]:
        response = await client.post(path, headers=CSRF)
        assert response.status == 401, path
        body = await response.json()
        assert body["error"] == "invalid_grant"
        assert "No refresh cookie arrived" in body["message"]
    # Without the header (not a cookie request at all) the answers stay as they were.
    response = await client.post("/v1/refresh")
    assert (await response.json())["message"] == "The refresh token is invalid, expired or revoked."
    assert await error_of(await client.post("/v1/logout")) == "invalid_token"
