"""POST /v1/email/verify, the verification message of register, and
AUTH_REQUIRE_VERIFIED_EMAIL at login."""

from __future__ import annotations

from dataclasses import replace

import asyncpg
from conftest import MakeClient
from helpers import PASSWORD, Client, bearer, error_of, login, register
from mail_support import latest_code, outbox

from service.config import Settings


async def verify(client: Client, code: str, email: str = "ada@example.com") -> tuple[int, dict]:
    response = await client.post("/v1/email/verify", json={"email": email, "code": code})
    return response.status, await response.json()


async def test_register_sends_a_code_that_verifies_the_address(
    client: Client, db: asyncpg.Connection
) -> None:
    user = await register(client)
    assert user["email_verified"] is False
    [message] = await outbox(db, "email_verification")
    assert message["recipient"] == "ada@example.com"
    status, body = await verify(client, await latest_code(db, "email_verification"))
    assert status == 200
    assert body["user"]["id"] == user["id"] and body["user"]["email_verified"] is True
    tokens = await login(client)
    me = await client.get("/v1/me", headers=bearer(tokens))
    assert (await me.json())["user"]["email_verified"] is True


async def test_wrong_used_and_unknown_codes_are_invalid_code(
    client: Client, db: asyncpg.Connection
) -> None:
    await register(client)
    code = await latest_code(db, "email_verification")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for attempt in (wrong, "x"):
        response = await client.post(
            "/v1/email/verify", json={"email": "ada@example.com", "code": attempt}
        )
        assert response.status == 400 and await error_of(response) == "invalid_code"
    status, body = await verify(client, code, "nobody@example.com")
    assert (status, body["error"]) == (400, "invalid_code")
    assert (await verify(client, code))[0] == 200
    status, body = await verify(client, code)  # single use
    assert (status, body["error"]) == (400, "invalid_code")


async def test_required_verification_refuses_login_until_verified(
    make_client: MakeClient, db: asyncpg.Connection, settings: Settings
) -> None:
    client = await make_client(mail=replace(settings.mail, require_verified_email=True))
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 403 and await error_of(response) == "email_not_verified"
    assert await db.fetchval("SELECT count(*) FROM session") == 0
    wrong = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": "wrong one!"}
    )
    assert wrong.status == 401  # the right password is needed to learn anything
    assert (await verify(client, await latest_code(db, "email_verification")))[0] == 200
    await login(client)


async def test_unverified_login_is_allowed_by_default(client: Client) -> None:
    await register(client)
    tokens = await login(client)
    assert tokens["user"]["email_verified"] is False
