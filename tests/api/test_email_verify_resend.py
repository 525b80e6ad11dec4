"""POST /v1/email/verify/resend: 202 {} always; a new code only to an enabled, unverified
account; the newer code kills the older."""

from __future__ import annotations

import asyncpg
from conftest import FakeClock
from helpers import Client, register
from mail_support import latest_code, outbox


async def resend(client: Client, email: str = "ada@example.com") -> None:
    response = await client.post("/v1/email/verify/resend", json={"email": email})
    assert response.status == 202
    assert await response.json() == {}


async def test_resend_sends_a_new_code_and_kills_the_old(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    await register(client)
    first = await latest_code(db, "email_verification")
    clock.advance(1)
    await resend(client, "ADA@example.com")
    assert len(await outbox(db, "email_verification")) == 2
    second = await latest_code(db, "email_verification")
    old = await client.post("/v1/email/verify", json={"email": "ada@example.com", "code": first})
    # (10^-8 odds that both codes are equal: then the old one is the new one.)
    assert old.status == 400 or first == second
    new = await client.post("/v1/email/verify", json={"email": "ada@example.com", "code": second})
    assert new.status == 200


async def test_no_message_for_verified_unknown_or_disabled_addresses(
    client: Client, db: asyncpg.Connection
) -> None:
    await register(client)
    code = await latest_code(db, "email_verification")
    response = await client.post(
        "/v1/email/verify", json={"email": "ada@example.com", "code": code}
    )
    assert response.status == 200
    off = await register(client, "off@example.com")
    await db.execute('UPDATE "user" SET disabled_at = now() WHERE id = $1', off["id"])
    for email in ("ada@example.com", "nobody@example.com", "off@example.com"):
        await resend(client, email)
    assert len(await outbox(db, "email_verification")) == 2  # the two registrations only


async def test_resend_validates_the_email(client: Client) -> None:
    response = await client.post("/v1/email/verify/resend", json={"email": "@"})
    assert response.status == 422
