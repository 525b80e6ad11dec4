"""The contract's conventions: JSON errors for bad bodies, routes, methods and sizes; health."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import asyncpg
from helpers import PASSWORD, Client, error_of

from service.config import Settings
from service.domain.keys import KeySet
from service.domain.tokens import RefreshToken
from service.web.app import create_app
from service.web.appkeys import HEAD_REVISION as HEAD


async def test_bodies_that_are_not_json_objects_are_400(client: Client) -> None:
    for raw in [b"", b"{", b"[1, 2]", b"42", b'"text"', b"null", b"\xff\xfe", b'{"a": "\\ud800"}']:
        response = await client.post(
            "/v1/register", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, raw
        assert await error_of(response) == "invalid_request"


async def test_bodies_over_64_kib_are_413(client: Client) -> None:
    body = b'{"email": "a@b.io", "password": "' + b"x" * (64 * 1024) + b'"}'
    response = await client.post(
        "/v1/register", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 413 and await error_of(response) == "payload_too_large"


async def test_unknown_routes_are_404_and_wrong_methods_405(client: Client) -> None:
    response = await client.get("/v1/nothing-here")
    assert response.status == 404 and await error_of(response) == "not_found"
    response = await client.get("/v1/register")
    assert response.status == 405 and await error_of(response) == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


async def test_healthz_and_readyz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    response = await client.get("/readyz")
    assert response.status == 200 and await response.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_schema_is_behind(
    client: Client, db: asyncpg.Connection
) -> None:
    await db.execute("UPDATE alembic_version SET version_num = 'behind'")
    try:
        response = await client.get("/readyz")
        assert response.status == 503 and await error_of(response) == "service_unavailable"
    finally:
        await db.execute("UPDATE alembic_version SET version_num = $1", client.app[HEAD])


async def test_unreachable_database_is_503_and_healthz_stays_up(
    aiohttp_client: Any, settings: Settings, keys: KeySet
) -> None:
    closed_port = "postgresql://postgres@127.0.0.1:9/nowhere"  # nothing listens on port 9
    app = create_app(replace(settings, db_connect_timeout=2.0), closed_port, keys)
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    for method, path, body in [
        ("POST", "/v1/register", {"email": "a@b.io", "password": PASSWORD}),
        ("POST", "/v1/login", {"email": "a@b.io", "password": PASSWORD}),
        ("POST", "/v1/refresh", {"refresh_token": RefreshToken.new().encode()}),
        ("GET", "/readyz", None),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status == 503, path
        assert await error_of(response) == "service_unavailable"
        assert response.headers["Retry-After"] == "1"


async def test_errors_never_leak_internals(client: Client) -> None:
    response = await client.post(
        "/v1/login", json={"email": "a@b.io", "password": PASSWORD, "x": "'; DROP TABLE"}
    )
    text = await response.text()
    assert response.status == 401
    for needle in ["Traceback", "SELECT", "sqlalchemy", "asyncpg", "<html"]:
        assert needle not in text
