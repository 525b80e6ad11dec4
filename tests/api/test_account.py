"""POST /v1/password and DELETE /v1/me."""

from __future__ import annotations

import asyncpg
from helpers import PASSWORD, Client, bearer, error_of, login, register, signed_in

NEW_PASSWORD = "a much better passphrase"


async def test_password_change_revokes_every_other_session(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    response = await client.post(
        "/v1/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(phone),
    )
    assert response.status == 204
    assert (await client.get("/v1/me", headers=bearer(phone))).status == 200
    assert (await client.get("/v1/me", headers=bearer(laptop))).status == 401
    assert (
        await client.post("/v1/refresh", json={"refresh_token": phone["refresh_token"]})
    ).status == 200
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 401
    await login(client, password=NEW_PASSWORD)


async def test_password_change_with_a_wrong_current_password_is_403(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.post(
        "/v1/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status == 403 and await error_of(response) == "invalid_credentials"
    await login(client)  # unchanged


async def test_password_change_validates_the_new_password(client: Client) -> None:
    tokens = await signed_in(client)
    for body, field in [
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD, "new_password": 5}, "new_password"),
    ]:
        response = await client.post("/v1/password", json=body, headers=bearer(tokens))
        assert response.status == 422
        assert list((await response.json())["fields"]) == [field]


async def test_delete_account_removes_user_sessions_and_tokens(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    await login(client)
    await signed_in(client, "bob@example.com")
    response = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status == 204
    assert await db.fetchval('SELECT count(*) FROM "user"') == 1
    assert await db.fetchval("SELECT count(*) FROM session") == 1
    assert await db.fetchval("SELECT count(*) FROM refresh_token") == 1
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401
    response = await client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 401
    await register(client)  # the email is free again


async def test_delete_account_needs_the_password(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.request(
        "DELETE", "/v1/me", json={"password": "wrong password"}, headers=bearer(tokens)
    )
    assert response.status == 403 and await error_of(response) == "invalid_credentials"
    response = await client.request("DELETE", "/v1/me", headers=bearer(tokens))
    assert response.status == 400 and await error_of(response) == "invalid_request"
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 200
