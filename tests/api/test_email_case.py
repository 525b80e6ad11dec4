"""Emails are one account per lower(email), as PostgreSQL lowercases them, for every letter."""

from __future__ import annotations

import pytest
from helpers import PASSWORD, Client, error_of, login, register


@pytest.mark.parametrize(
    "email",
    [
        "\u00c9mile@example.com",  # É
        "\u212aelvin@example.com",  # KELVIN SIGN, which lowercases to ASCII k
        "\u0130stanbul@example.com",  # I WITH DOT ABOVE: two code points in Python's lower()
        "\u1e9eTRASSE@example.com",  # capital sharp s
    ],
)
async def test_non_ascii_email_logs_in_as_registered(client: Client, email: str) -> None:
    user = await register(client, email)
    tokens = await login(client, email)
    assert tokens["user"]["id"] == user["id"]
    response = await client.post("/v1/register", json={"email": email, "password": PASSWORD})
    assert response.status == 409
    assert await error_of(response) == "email_taken"


async def test_login_with_other_case_of_non_ascii_email(client: Client) -> None:
    user = await register(client, "\u00c9MILE@example.com")
    tokens = await login(client, "\u00e9mile@EXAMPLE.com")
    assert tokens["user"]["id"] == user["id"]
