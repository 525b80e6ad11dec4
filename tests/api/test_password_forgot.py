"""POST /v1/password/forgot: 202 {} for every address; a message only to a known, enabled one;
the per-address cap and the per-IP limit."""

from __future__ import annotations

import asyncpg
from conftest import FakeClock, MakeClient
from helpers import Client, error_of, register
from mail_support import code_in, outbox


async def forgot(client: Client, email: str = "ada@example.com") -> None:
    response = await client.post("/v1/password/forgot", json={"email": email})
    assert response.status == 202, await response.text()
    assert await response.json() == {}


async def test_known_address_gets_a_reset_message_with_an_8_digit_code(
    client: Client, db: asyncpg.Connection
) -> None:
    await register(client, "Ada@Example.com")
    await forgot(client, "ada@example.com")
    [message] = await outbox(db, "password_reset")
    assert message["recipient"] == "Ada@Example.com"  # as the user typed it at registration
    code = code_in(message["text"])
    assert len(code) == 8 and code in message["html"]
    assert message["sent_at"] is None and message["failed_at"] is None
    # Only the code's keyed hash is stored; nothing in the table spells the digits.
    [stored] = await db.fetch("SELECT * FROM one_time_code WHERE purpose = 'password_reset'")
    assert code.encode() not in bytes(stored["digest"]) and len(stored["digest"]) == 32
    assert code not in repr(dict(stored))


async def test_unknown_and_disabled_addresses_get_the_same_answer_and_no_message(
    client: Client, db: asyncpg.Connection
) -> None:
    user = await register(client, "off@example.com")
    await db.execute('UPDATE "user" SET disabled_at = now() WHERE id = $1', user["id"])
    await forgot(client, "nobody@example.com")
    await forgot(client, "off@example.com")
    assert await outbox(db, "password_reset") == []
    assert (
        await db.fetchval("SELECT count(*) FROM one_time_code WHERE purpose = 'password_reset'")
        == 0
    )


async def test_at_most_code_max_sends_messages_per_address_per_window(
    make_client: MakeClient, db: asyncpg.Connection, clock: FakeClock, settings: object
) -> None:
    client = await make_client()
    await register(client)  # its verification message is not counted
    for _ in range(3):  # AUTH_CODE_MAX_SENDS default
        await forgot(client)
    await forgot(client)  # past the cap: still 202, no message
    assert len(await outbox(db, "password_reset")) == 3
    # resend counts with forgot: capped as well
    response = await client.post("/v1/email/verify/resend", json={"email": "ada@example.com"})
    assert response.status == 202
    assert len(await outbox(db, "email_verification")) == 1
    clock.advance(600)  # the fixture's AUTH_LOGIN_WINDOW
    await forgot(client)
    assert len(await outbox(db, "password_reset")) == 4


async def test_per_ip_limit_is_ten_times_the_cap_over_any_addresses(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    for number in range(30):
        path = "/v1/password/forgot" if number % 2 else "/v1/email/verify/resend"
        response = await client.post(path, json={"email": f"u{number}@example.com"})
        assert response.status == 202
    for path in ("/v1/password/forgot", "/v1/email/verify/resend"):
        response = await client.post(path, json={"email": "another@example.com"})
        assert response.status == 429 and await error_of(response) == "rate_limited"
        assert 1 <= int(response.headers["Retry-After"]) <= 600
    clock.advance(600)
    await forgot(client, "another@example.com")


async def test_forgot_validates_the_email(client: Client) -> None:
    for body in ({}, {"email": "not an address"}, {"email": 5}):
        response = await client.post("/v1/password/forgot", json=body)
        assert response.status == 422
        assert list((await response.json())["fields"]) == ["email"]
    response = await client.post(
        "/v1/password/forgot", data="[]", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
