"""Point 1 (login CSRF): a cross-site form or text/plain POST, which a browser sends without a
CORS preflight, must not log in, register or refresh. Only application/json bodies on /v1/*."""

from __future__ import annotations

import json

import pytest
from helpers import PASSWORD, Client, error_of, login, register

ATTACK = json.dumps(
    {"email": "attacker@example.com", "password": PASSWORD, "transport": "cookie", "x": "="}
)
NOT_JSON = [
    "text/plain",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/jsonp",
    "application/json-seq",
    "application/merge-patch+json",
]


@pytest.mark.parametrize("content_type", NOT_JSON)
async def test_login_with_a_body_that_is_not_json_is_415_and_sets_no_cookie(
    client: Client, content_type: str
) -> None:
    await register(client, "attacker@example.com")
    response = await client.post(
        "/v1/login",
        data=ATTACK,
        headers={"Content-Type": content_type, "Origin": "https://evil.example"},
    )
    assert response.status == 415
    assert await error_of(response) == "unsupported_media_type"
    assert "Set-Cookie" not in response.headers


async def test_a_body_without_content_type_is_415(client: Client) -> None:
    # skip_auto_headers: aiohttp would otherwise label bytes application/octet-stream.
    response = await client.post(
        "/v1/register",
        data=ATTACK.encode(),
        skip_auto_headers=["Content-Type"],
    )
    assert response.status == 415
    assert await error_of(response) == "unsupported_media_type"


async def test_register_refresh_logout_and_account_routes_refuse_plain_text(
    client: Client,
) -> None:
    await register(client)
    tokens = await login(client)
    auth = {"Authorization": f"Bearer {tokens['access_token']}", "Content-Type": "text/plain"}
    body = json.dumps({"email": "eve@example.com", "password": PASSWORD})
    for method, path, headers in [
        ("POST", "/v1/register", {"Content-Type": "text/plain"}),
        ("POST", "/v1/refresh", {"Content-Type": "text/plain"}),
        ("POST", "/v1/logout", auth),
        ("POST", "/v1/password", auth),
        ("DELETE", "/v1/me", auth),
    ]:
        response = await client.request(method, path, data=body, headers=headers)
        assert response.status == 415, (method, path)
    # Nothing happened: no account for eve, ada's session still works.
    assert (await client.get("/v1/me", headers={"Authorization": auth["Authorization"]})).ok
    refused = await client.post(
        "/v1/login", json={"email": "eve@example.com", "password": PASSWORD}
    )
    assert refused.status == 401


async def test_json_with_parameters_is_served(client: Client) -> None:
    await register(client)
    for content_type in ("application/json; charset=utf-8", "Application/JSON;charset=UTF-8"):
        response = await client.post(
            "/v1/login",
            data=json.dumps({"email": "ada@example.com", "password": PASSWORD}),
            headers={"Content-Type": content_type},
        )
        assert response.status == 200, content_type


async def test_requests_without_a_body_need_no_content_type(client: Client) -> None:
    await register(client)
    tokens = await login(client)
    response = await client.post(
        "/v1/logout",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        skip_auto_headers=["Content-Type"],
    )
    assert response.status == 204
