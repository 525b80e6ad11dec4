"""A hand-written corpus of hostile requests: each is answered with the contract's JSON error
(status, application/json, error code), never a 500, an HTML page or a plain-text one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from helpers import PASSWORD, Client, bearer, login, register, signed_in

ADMIN_KEY = "hostile-admin-key-that-is-long-enough"
KIB = 1024


@pytest.fixture
async def admin_client(make_client: Any) -> Client:
    client: Client = await make_client(admin_key=ADMIN_KEY)
    return client


async def expect_error(response: Any, status: int, code: str) -> dict[str, Any]:
    text = await response.text()
    assert response.status == status, text
    assert response.content_type == "application/json", text
    body: dict[str, Any] = json.loads(text)
    assert body["error"] == code, body
    assert isinstance(body["message"], str)
    return body


async def expect_field_error(response: Any, field: str) -> None:
    body = await expect_error(response, 422, "validation_error")
    assert field in body["fields"], body


# --- NUL bytes --------------------------------------------------------------------------------


async def test_nul_bytes_in_fields_are_validation_errors(client: Client) -> None:
    response = await client.post(
        "/v1/register", json={"email": "ada\x00@example.com", "password": PASSWORD}
    )
    await expect_field_error(response, "email")
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD, "device_name": "a\x00"}
    )
    await expect_field_error(response, "device_name")


async def test_nul_byte_in_password_is_kept_not_truncated(client: Client) -> None:
    await register(client, "nul@example.com", password="before\x00after")
    await login(client, "nul@example.com", password="before\x00after")
    response = await client.post(
        "/v1/login", json={"email": "nul@example.com", "password": "before"}
    )
    await expect_error(response, 401, "invalid_credentials")


async def test_nul_bytes_in_tokens_and_ids_are_refused(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.post("/v1/refresh", json={"refresh_token": "\x00" * 40})
    await expect_error(response, 401, "invalid_grant")
    response = await client.delete("/v1/sessions/%00", headers=bearer(tokens))
    await expect_error(response, 404, "not_found")


# --- unicode confusables in emails ------------------------------------------------------------


async def test_confusable_emails_are_other_accounts(client: Client) -> None:
    await register(client, "ada@example.com")
    cyrillic = "\u0430da@example.com"  # Cyrillic a
    await register(client, cyrillic, password="another password")
    response = await client.post("/v1/login", json={"email": cyrillic, "password": PASSWORD})
    await expect_error(response, 401, "invalid_credentials")
    for email in ("ADA@EXAMPLE.COM", "  Ada@Example.Com\t"):
        response = await client.post("/v1/register", json={"email": email, "password": PASSWORD})
        await expect_error(response, 409, "email_taken")
    for email in ("ada\uff20example.com", "ada@example\u3002com", "ada@exa mple.com"):
        response = await client.post("/v1/register", json={"email": email, "password": PASSWORD})
        await expect_field_error(response, "email")


# --- long strings -----------------------------------------------------------------------------


async def test_ten_kilobyte_strings_are_validation_errors(client: Client) -> None:
    long = "x" * (10 * KIB)
    cases = [
        ("/v1/register", {"email": long + "@example.com", "password": PASSWORD}, "email"),
        ("/v1/register", {"email": "ada@example.com", "password": long}, "password"),
        ("/v1/login", {"email": "ada@example.com", "password": long}, "password"),
        ("/v1/login", {"email": "a@b.io", "password": "p", "device_name": long}, "device_name"),
        ("/v1/login", {"email": "a@b.io", "password": "p", "platform": long}, "platform"),
        ("/v1/login", {"email": "a@b.io", "password": "p", "transport": long}, "transport"),
        ("/v1/logout", {"scope": long}, "scope"),
    ]
    for path, body, field in cases:
        await expect_field_error(await client.post(path, json=body), field)
    # A refresh token string Rotor did not issue is an invalid grant, whatever its length.
    response = await client.post("/v1/refresh", json={"refresh_token": long})
    await expect_error(response, 401, "invalid_grant")


# --- nesting and wrong JSON types -------------------------------------------------------------


async def test_deeply_nested_json_is_refused(client: Client) -> None:
    for depth in (100, 5000, 30000):
        nested = "[" * depth + "]" * depth
        response = await client.post(
            "/v1/register",
            data=f'{{"email": {nested}, "password": "{PASSWORD}"}}',
            headers={"Content-Type": "application/json"},
        )
        if depth <= 500:
            await expect_field_error(response, "email")
        elif 2 * depth + 40 > 64 * KIB:
            await expect_error(response, 413, "payload_too_large")
        else:
            await expect_error(response, 400, "invalid_request")  # past the parser's depth
        nested_object = '{"a":' * depth + "1" + "}" * depth
        response = await client.post(
            "/v1/login", data=nested_object, headers={"Content-Type": "application/json"}
        )
        if 6 * depth > 64 * KIB:
            await expect_error(response, 413, "payload_too_large")
        elif depth <= 500:
            await expect_field_error(response, "email")
        else:
            await expect_error(response, 400, "invalid_request")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/register", {"email": 1, "password": PASSWORD}, "email"),
        ("/v1/register", {"email": "ada@example.com", "password": 12345678}, "password"),
        ("/v1/register", {"email": ["ada@example.com"], "password": PASSWORD}, "email"),
        ("/v1/register", {"email": {"$ne": ""}, "password": PASSWORD}, "email"),
        ("/v1/register", {"email": None, "password": PASSWORD}, "email"),
        ("/v1/login", {"email": "ada@example.com", "password": True}, "password"),
        ("/v1/login", {"email": "a@b.io", "password": "p", "transport": None}, "transport"),
        ("/v1/login", {"email": "a@b.io", "password": "p", "device_name": 7}, "device_name"),
        ("/v1/refresh", {"refresh_token": 42}, "refresh_token"),
        ("/v1/refresh", {"refresh_token": ["a.b"]}, "refresh_token"),
        ("/v1/logout", {"scope": 1.5}, "scope"),
        ("/v1/logout", {"scope": "GLOBAL"}, "scope"),
        ("/v1/register", {"password": PASSWORD}, "email"),
    ],
)
async def test_wrong_json_types_are_validation_errors(
    client: Client, path: str, body: dict[str, Any], field: str
) -> None:
    await expect_field_error(await client.post(path, json=body), field)


async def test_wrong_json_types_on_protected_routes(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.post(
        "/v1/password",
        json={"current_password": PASSWORD, "new_password": {"x": 1}},
        headers=bearer(tokens),
    )
    await expect_field_error(response, "new_password")
    response = await client.delete("/v1/me", json={"password": 0}, headers=bearer(tokens))
    await expect_field_error(response, "password")


# --- SQL-looking strings ----------------------------------------------------------------------


async def test_sql_looking_strings_are_just_data(admin_client: Client) -> None:
    client = admin_client
    email = "o'brien--@example.com"
    user = await register(client, email)
    assert user["email"] == email
    await login(client, email)
    response = await client.post(
        "/v1/login", json={"email": "x@x.io' OR '1'='1", "password": "' OR '1'='1"}
    )
    await expect_field_error(response, "email")
    response = await client.post(
        "/v1/login", json={"email": "x@x.io'--", "password": "' OR '1'='1"}
    )
    await expect_error(response, 401, "invalid_credentials")
    response = await client.post("/v1/refresh", json={"refresh_token": "1' OR '1'='1"})
    await expect_error(response, 401, "invalid_grant")
    tokens = await login(client, email)
    for hostile in ("1' OR '1'='1", '\'; DROP TABLE "user"; --', "%27%20OR%201%3D1"):
        response = await client.delete(f"/v1/sessions/{hostile}", headers=bearer(tokens))
        await expect_error(response, 404, "not_found")
        response = await client.get(
            f"/v1/admin/users/{hostile}/sessions", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        )
        await expect_error(response, 404, "not_found")
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 200


# --- Authorization headers --------------------------------------------------------------------

GARBAGE_AUTHORIZATION = [
    "",
    "Bearer",
    "Bearer ",
    "bearer    ",
    "Basic YWRhOnBhc3N3b3Jk",
    "Bearer a.b.c",
    "Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiIxIn0.",
    "Bearer \u00e9\u00e8",
    "Bearer " + "A" * (15 * KIB),
    "Bearer " + "eyJ." * 3000,
    "Bearer x Bearer y",
]


@pytest.mark.parametrize(
    "authorization", GARBAGE_AUTHORIZATION, ids=range(len(GARBAGE_AUTHORIZATION))
)
async def test_garbage_authorization_is_invalid_token(
    admin_client: Client, authorization: str
) -> None:
    headers = {"Authorization": authorization}
    for method, path in [
        ("GET", "/v1/me"),
        ("GET", "/v1/sessions"),
        ("DELETE", "/v1/sessions/00000000-0000-0000-0000-000000000000"),
        ("POST", "/v1/password"),
        ("DELETE", "/v1/me"),
        ("POST", "/v1/logout"),
        ("GET", "/v1/admin/users/00000000-0000-0000-0000-000000000000/sessions"),
        ("POST", "/v1/admin/users/00000000-0000-0000-0000-000000000000/disable"),
    ]:
        response = await admin_client.request(method, path, headers=headers)
        await expect_error(response, 401, "invalid_token")
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


# --- header sizes -----------------------------------------------------------------------------


async def test_huge_user_agent_is_stored_truncated(client: Client) -> None:
    await register(client)
    response = await client.post(
        "/v1/login",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"User-Agent": "u" * (15 * KIB)},
    )
    assert response.status == 200
    tokens = await response.json()
    sessions = await (await client.get("/v1/sessions", headers=bearer(tokens))).json()
    assert len(sessions["sessions"][0]["user_agent"]) == 512


# --- body sizes and shapes --------------------------------------------------------------------


def _body_routes(tokens: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """Every route that reads a JSON body, with the credentials it needs."""
    return [
        ("POST", "/v1/register", {}),
        ("POST", "/v1/login", {}),
        ("POST", "/v1/refresh", {}),
        ("POST", "/v1/logout", {}),
        ("POST", "/v1/password", bearer(tokens)),
        ("DELETE", "/v1/me", bearer(tokens)),
    ]


async def test_bodies_over_64_kib_are_payload_too_large(client: Client) -> None:
    tokens = await signed_in(client)
    big = json.dumps({"email": "ada@example.com", "password": "x" * (64 * KIB)})
    for method, path, headers in _body_routes(tokens):
        response = await client.request(
            method, path, data=big, headers={"Content-Type": "application/json", **headers}
        )
        await expect_error(response, 413, "payload_too_large")

    async def chunks() -> Any:
        for _ in range(80):
            yield b" " * KIB

    response = await client.post(
        "/v1/register", data=chunks(), headers={"Content-Type": "application/json"}
    )
    await expect_error(response, 413, "payload_too_large")


NOT_OBJECTS = [
    b"[]",
    b"1",
    b'"ada"',
    b"null",
    b"true",
    b"{",
    b'{"a": 1} trailing',
    b"\xff\xfe",
    b"\xef\xbb\xbf{}",
    b"{'email': 1}",
    b"NaN",
]


@pytest.mark.parametrize("body", NOT_OBJECTS, ids=range(len(NOT_OBJECTS)))
async def test_bodies_that_are_not_json_objects_are_invalid_requests(
    client: Client, body: bytes
) -> None:
    tokens = await signed_in(client)
    for method, path, headers in _body_routes(tokens):
        response = await client.request(
            method, path, data=body, headers={"Content-Type": "application/json", **headers}
        )
        await expect_error(response, 400, "invalid_request")


async def test_empty_body_is_invalid_where_one_is_required(client: Client) -> None:
    tokens = await signed_in(client)
    for method, path, headers in [
        ("POST", "/v1/register", {}),
        ("POST", "/v1/login", {}),
        ("POST", "/v1/password", bearer(tokens)),
        ("DELETE", "/v1/me", bearer(tokens)),
    ]:
        response = await client.request(method, path, headers=headers)
        await expect_error(response, 400, "invalid_request")


# --- routes and methods -----------------------------------------------------------------------


async def test_unknown_routes_and_wrong_methods_are_json(client: Client) -> None:
    for path in ("/", "/v1", "/v1/registe", "/v1/sessions/", "/v2/me", "/%00", "/.env"):
        await expect_error(await client.get(path), 404, "not_found")
    for method, path in [
        ("PUT", "/v1/register"),
        ("GET", "/v1/login"),
        ("PATCH", "/v1/me"),
        ("POST", "/healthz"),
        ("DELETE", "/openapi.json"),
    ]:
        response = await client.request(method, path)
        await expect_error(response, 405, "method_not_allowed")
        assert response.headers["Allow"]


# --- raw HTTP: what a well-behaved client library would never send ----------------------------


async def raw_request(client: Client, request: bytes) -> tuple[int, dict[str, str], bytes]:
    assert client.port is not None
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _get_me_with(header: bytes) -> bytes:
    """A raw GET /v1/me carrying one extra header line, exactly as given."""
    return b"GET /v1/me HTTP/1.1\r\nHost: localhost\r\n" + header + b"\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Authorization: Bearer \xff\xfe\xfd", id="non-utf8"),
        pytest.param(b"Authorization: Bearer " + b"B" * (15 * KIB), id="15KiB"),
        pytest.param(b"Authorization: Bearer a\tb", id="tab"),
    ],
)
async def test_raw_hostile_headers_are_answered_with_json(client: Client, header: bytes) -> None:
    status, headers, body = await raw_request(client, _get_me_with(header))
    assert status == 401, body
    assert headers["content-type"].startswith("application/json"), body
    assert json.loads(body)["error"] == "invalid_token"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Authorization: Bearer secret-token\x00\x00", id="nul"),
        pytest.param(b"X-CSRF-Token: secret-token\x01\x02", id="control"),
    ],
)
async def test_headers_the_http_parser_refuses_are_answered_with_json(
    client: Client, header: bytes
) -> None:
    """aiohttp's parser refuses control characters in header values before any middleware
    runs; the answer is still the contract's JSON error, and does not quote the header."""
    status, headers, body = await raw_request(client, _get_me_with(header))
    assert status == 400, body
    assert headers["content-type"].startswith("application/json"), body
    assert json.loads(body)["error"] == "invalid_request"
    assert b"secret-token" not in body
