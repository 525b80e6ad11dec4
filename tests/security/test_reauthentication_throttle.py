"""Point 2: with a stolen access token, guessing the password on POST /v1/password or
DELETE /v1/me counts as failed logins of the account, and is 429 once throttled (the password
not even checked), so the thief cannot find it, change it and keep the account."""

from __future__ import annotations

from typing import Any

import asyncpg
from helpers import PASSWORD, Client, bearer, error_of, signed_in

MAX_FAILURES = 5  # the test settings' AUTH_LOGIN_MAX_FAILURES


async def _change(client: Client, tokens: dict[str, Any], current: str) -> Any:
    return await client.post(
        "/v1/password",
        json={"current_password": current, "new_password": "a brand new password"},
        headers=bearer(tokens),
    )


async def test_guessing_the_current_password_is_throttled(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    tokens = await signed_in(client)
    for attempt in range(MAX_FAILURES):
        response = await _change(client, tokens, f"guess number {attempt}")
        assert response.status == 403
    # The right password, now: refused without being checked.
    response = await _change(client, tokens, PASSWORD)
    assert response.status == 429
    assert await error_of(response) == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    # The account's login is throttled by the same failures.
    login = await client.post("/v1/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 429
    # Once the window has passed, the owner's password still works: nothing was changed.
    clock.advance(601)
    login = await client.post("/v1/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert login.status == 200
    failures = await db.fetchval("SELECT count(*) FROM auth_event WHERE kind = 'login_failed'")
    assert failures == MAX_FAILURES


async def test_guessing_the_password_of_account_deletion_is_throttled(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    for attempt in range(MAX_FAILURES):
        response = await client.delete(
            "/v1/me", json={"password": f"guess {attempt}"}, headers=bearer(tokens)
        )
        assert response.status == 403
    response = await client.delete("/v1/me", json={"password": PASSWORD}, headers=bearer(tokens))
    assert response.status == 429
    assert await db.fetchval('SELECT count(*) FROM "user"') == 1


async def test_failed_logins_throttle_re_authentication_too(client: Client) -> None:
    tokens = await signed_in(client)
    for _ in range(MAX_FAILURES):
        wrong = {"email": "ada@example.com", "password": "wrong password"}
        assert (await client.post("/v1/login", json=wrong)).status == 401
    assert (await _change(client, tokens, PASSWORD)).status == 429
