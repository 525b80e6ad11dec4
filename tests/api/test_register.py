"""POST /v1/register."""

from __future__ import annotations

import asyncpg
from helpers import PASSWORD, Client, error_of, login, register


async def test_register_returns_the_user_without_its_hash(client: Client) -> None:
    response = await client.post(
        "/v1/register", json={"email": "  Ada@Example.com ", "password": PASSWORD}
    )
    assert response.status == 201
    body = await response.json()
    assert set(body["user"]) == {"id", "email", "email_verified", "created_at"}
    assert body["user"]["email_verified"] is False
    assert body["user"]["email"] == "Ada@Example.com"  # trimmed, case kept for display
    assert body["user"]["created_at"] == "2026-11-27T12:00:00Z"


async def test_email_is_case_insensitive(client: Client) -> None:
    await register(client, "A@X.io")
    response = await client.post("/v1/register", json={"email": "a@x.io", "password": PASSWORD})
    assert response.status == 409 and await error_of(response) == "email_taken"
    assert (await login(client, "a@X.IO"))["user"]["email"] == "A@X.io"


async def test_password_is_stored_hashed(client: Client, db: asyncpg.Connection) -> None:
    await register(client)
    stored = await db.fetchval('SELECT password_hash FROM "user"')
    assert PASSWORD not in stored and stored.startswith("bcrypt-hmac-sha256$$2b$04$")


async def test_field_validation(client: Client) -> None:
    cases = [
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": "a@b.io", "password": "short"}, "password"),
        ({"email": "a@b.io", "password": "x" * 257}, "password"),
        ({"password": PASSWORD}, "email"),
        ({"email": "a@b.io"}, "password"),
        ({"email": 5, "password": PASSWORD}, "email"),
        ({"email": "a@b.io", "password": 12345678}, "password"),
        ({"email": "a\x00@b.io", "password": PASSWORD}, "email"),
        ({"email": "a" * 250 + "@b.io", "password": PASSWORD}, "email"),
    ]
    for body, field in cases:
        response = await client.post("/v1/register", json=body)
        assert response.status == 422, body
        payload = await response.json()
        assert payload["error"] == "validation_error"
        assert list(payload["fields"]) == [field], payload


async def test_password_bounds_are_inclusive(client: Client) -> None:
    for index, password in enumerate(["x" * 8, "y" * 256]):
        response = await client.post(
            "/v1/register", json={"email": f"u{index}@b.io", "password": password}
        )
        assert response.status == 201


async def test_passwords_differing_after_72_bytes_are_different(client: Client) -> None:
    prefix = "p" * 72
    await register(client, "long@b.io", prefix + "-first")
    response = await client.post(
        "/v1/login", json={"email": "long@b.io", "password": prefix + "-second"}
    )
    assert response.status == 401 and await error_of(response) == "invalid_credentials"
    assert (await login(client, "long@b.io", prefix + "-first"))["user"]["email"] == "long@b.io"
