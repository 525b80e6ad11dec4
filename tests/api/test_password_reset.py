"""POST /v1/password/reset (and the "password changed" message of POST /v1/password)."""

from __future__ import annotations

from typing import Any

import asyncpg
from conftest import FakeClock
from helpers import PASSWORD, Client, bearer, error_of, login, refresh, register, signed_in
from mail_support import latest_code, outbox

NEW_PASSWORD = "a brand new passphrase"


async def forgot(client: Client, email: str = "ada@example.com") -> None:
    response = await client.post("/v1/password/forgot", json={"email": email})
    assert response.status == 202


async def reset(client: Client, code: str, **body: Any) -> Any:
    payload = {"email": "ada@example.com", "code": code, "new_password": NEW_PASSWORD, **body}
    return await client.post("/v1/password/reset", json=payload)


async def assert_invalid_code(response: Any) -> None:
    assert response.status == 400, await response.text()
    assert await error_of(response) == "invalid_code"


async def test_right_code_sets_password_revokes_sessions_verifies_and_notifies(
    client: Client, db: asyncpg.Connection
) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    await forgot(client)
    code = await latest_code(db, "password_reset")
    response = await reset(client, code)
    assert response.status == 204
    for tokens in (phone, laptop):
        assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401
        assert (await refresh(client, tokens["refresh_token"])).status == 401
    wrong = await client.post("/v1/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert wrong.status == 401
    tokens = await login(client, password=NEW_PASSWORD)
    assert tokens["user"]["email_verified"] is True
    [changed] = await outbox(db, "password_changed")
    assert changed["recipient"] == "ada@example.com"
    # Single use: the same code again is refused.
    await assert_invalid_code(await reset(client, code, new_password="yet another passphrase"))


async def test_wrong_expired_and_unknown_all_answer_invalid_code(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    await register(client)
    await forgot(client)
    code = await latest_code(db, "password_reset")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    await assert_invalid_code(await reset(client, wrong))
    await assert_invalid_code(await reset(client, code, email="nobody@example.com"))
    await assert_invalid_code(await reset(client, "not digits"))
    clock.advance(900)  # AUTH_CODE_TTL default: expired at exactly its end
    await assert_invalid_code(await reset(client, code))
    await login(client)  # unchanged


async def test_five_wrong_tries_kill_the_code(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    await register(client)
    await forgot(client)
    code = await latest_code(db, "password_reset")
    wrong = f"{(int(code) + 1) % 10**8:08d}"
    for _ in range(5):
        await assert_invalid_code(await reset(client, wrong))
    await assert_invalid_code(await reset(client, code))  # dead now
    clock.advance(1)  # so that the newest message is the last one
    await forgot(client)  # a new code helps
    assert (await reset(client, await latest_code(db, "password_reset"))).status == 204


async def test_a_newer_code_kills_the_older(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    await register(client)
    await forgot(client)
    older = await latest_code(db, "password_reset")
    clock.advance(1)
    await forgot(client)
    newer = await latest_code(db, "password_reset")
    await assert_invalid_code(await reset(client, older))
    assert (await reset(client, newer)).status == 204


async def test_reset_for_a_disabled_account_is_invalid_code(
    client: Client, db: asyncpg.Connection
) -> None:
    user = await register(client)
    await forgot(client)
    code = await latest_code(db, "password_reset")
    await db.execute('UPDATE "user" SET disabled_at = now() WHERE id = $1', user["id"])
    await assert_invalid_code(await reset(client, code))


async def test_reset_applies_the_register_password_rules(client: Client) -> None:
    for body, field in [
        ({"email": "ada@example.com", "code": "12345678", "new_password": "short"}, "new_password"),
        ({"email": "ada@example.com", "new_password": NEW_PASSWORD}, "code"),
        ({"email": "ada@example.com", "code": 12345678, "new_password": NEW_PASSWORD}, "code"),
        ({"email": "nope", "code": "12345678", "new_password": NEW_PASSWORD}, "email"),
    ]:
        response = await client.post("/v1/password/reset", json=body)
        assert response.status == 422
        assert list((await response.json())["fields"]) == [field]


async def test_password_change_queues_a_password_changed_message(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    response = await client.post(
        "/v1/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(tokens),
    )
    assert response.status == 204
    [changed] = await outbox(db, "password_changed")
    assert changed["recipient"] == "ada@example.com" and "password" in changed["subject"]
