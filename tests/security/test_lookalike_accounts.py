"""Point 4: look-alike addresses are one account (NFKC, case folding, trailing dot), invisible
characters are refused, and passwords are compared after NFC (older hashes still verify and are
upgraded at the next login)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import bcrypt
import pytest
from helpers import PASSWORD, Client, error_of, login, register

from service.domain import hash_schemes
from service.domain.emails import canonical

ADA = "ada@example.com"
SAME_AS_ADA = [
    "ADA@EXAMPLE.COM",
    "\uff41\uff44\uff41@example.com",  # fullwidth a, d, a
    "ada@\uff45xample.com",  # fullwidth e
    "ada@example.com.",
    "  Ada@Example.Com  ",
]
INVISIBLE = [
    "ada@example.com\u200b",  # zero-width space after
    "\u200bada@example.com",  # and before
    "a\u200dda@example.com",  # zero-width joiner
    "ada@exa\u202emple.com",  # right-to-left override
    "\ufeffada@example.com",  # byte-order mark
    "ada@example.com\u2066",  # left-to-right isolate
    "ada\uff20example.com",  # fullwidth @: NFKC would make it the separator
]


def test_the_canonical_form() -> None:
    for email in SAME_AS_ADA:
        assert canonical(email) == ADA, email
    assert canonical("e\u0301lan@example.com") == canonical("\u00e9lan@example.com")
    assert canonical("STRASSE@example.com") == canonical("stra\u00dfe@example.com")


@pytest.mark.parametrize("email", SAME_AS_ADA, ids=range(len(SAME_AS_ADA)))
async def test_a_look_alike_is_the_same_account(client: Client, email: str) -> None:
    user = await register(client, ADA)
    response = await client.post("/v1/register", json={"email": email, "password": PASSWORD})
    assert response.status == 409
    assert (await login(client, email))["user"]["id"] == user["id"]


async def test_decomposed_and_composed_accents_are_one_account(client: Client) -> None:
    await register(client, "\u00e9lan@example.com")
    decomposed = {"email": "e\u0301lan@example.com", "password": PASSWORD}
    assert (await client.post("/v1/register", json=decomposed)).status == 409


@pytest.mark.parametrize("email", INVISIBLE, ids=range(len(INVISIBLE)))
async def test_invisible_characters_are_refused(client: Client, email: str) -> None:
    for path in ("/v1/register", "/v1/login"):
        response = await client.post(path, json={"email": email, "password": PASSWORD})
        assert response.status == 422, path
        assert (await response.json())["fields"]["email"]


async def test_the_address_is_shown_as_typed(client: Client) -> None:
    user = await register(client, "  \uff21da@Example.com ")
    assert user["email"] == "\uff21da@Example.com"
    assert (await login(client, ADA))["user"]["email"] == "\uff21da@Example.com"


async def test_passwords_typed_with_either_accent_composition_are_one(client: Client) -> None:
    composed, decomposed = "caf\u00e9 au lait!", "cafe\u0301 au lait!"
    await register(client, ADA, decomposed)
    await login(client, ADA, composed)
    await login(client, ADA, decomposed)
    wrong = await client.post("/v1/login", json={"email": ADA, "password": "cafe au lait!"})
    assert await error_of(wrong) == "invalid_credentials"


async def test_a_hash_made_before_nfc_still_verifies_and_is_upgraded(
    client: Client, db: asyncpg.Connection
) -> None:
    typed = "cafe\u0301 au lait!"  # decomposed, hashed as typed by the code before the rule
    prehashed = hash_schemes.rotor_prehash(typed.encode())
    old_hash = f"{hash_schemes.ROTOR}${bcrypt.hashpw(prehashed, bcrypt.gensalt(4)).decode()}"
    user_id = uuid.uuid4()
    now = datetime.now(UTC)
    await db.execute(
        'INSERT INTO "user" (id, email, email_canonical, password_hash, created_at, updated_at)'
        " VALUES ($1, $2, $2, $3, $4, $4)",
        user_id,
        ADA,
        old_hash,
        now,
    )
    await login(client, ADA, typed)
    new_hash = await db.fetchval('SELECT password_hash FROM "user" WHERE id = $1', user_id)
    assert new_hash != old_hash
    # The new hash is of the NFC form: the composed spelling now works too.
    await login(client, ADA, "caf\u00e9 au lait!")
    await login(client, ADA, typed)
