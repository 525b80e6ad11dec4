"""Point 9: every lifetime accepts any whole number of seconds from 1 (for watching a client
handle expiry within a minute; rotor serve warns), and a refresh token string of any length that
Rotor did not issue is 401 invalid_grant, not a validation error."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Client, bearer, error_of, refresh, signed_in

from service.config import ConfigError, load_settings, short_lifetimes


def test_lifetimes_from_one_second_are_accepted_with_a_warning() -> None:
    settings = load_settings(
        {"AUTH_ACCESS_TTL": "3", "AUTH_SESSION_IDLE_TTL": "5", "AUTH_SESSION_MAX_TTL": "10"}
    )
    assert (settings.access_ttl, settings.session_idle_ttl, settings.session_max_ttl) == (3, 5, 10)
    assert short_lifetimes(settings) == [
        "AUTH_ACCESS_TTL",
        "AUTH_SESSION_IDLE_TTL",
        "AUTH_SESSION_MAX_TTL",
    ]
    assert short_lifetimes(load_settings({})) == []
    for name in ("AUTH_ACCESS_TTL", "AUTH_SESSION_IDLE_TTL", "AUTH_SESSION_MAX_TTL"):
        with pytest.raises(ConfigError, match=name):
            load_settings({name: "0"})


async def test_a_five_second_session_ends_after_five_seconds(make_client: Any, clock: Any) -> None:
    client = await make_client(access_ttl=3, session_idle_ttl=5, session_max_ttl=10)
    tokens = await signed_in(client)
    assert tokens["refresh_expires_in"] == 5
    clock.advance(4)
    rotated = await refresh(client, tokens["refresh_token"])
    assert rotated.status == 200
    clock.advance(6)
    assert (await refresh(client, (await rotated.json())["refresh_token"])).status == 401
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401


@pytest.mark.parametrize("length", [513, 4096, 50_000])
async def test_a_long_refresh_token_is_an_invalid_grant(client: Client, length: int) -> None:
    response = await client.post("/v1/refresh", json={"refresh_token": "x" * length})
    assert response.status == 401
    assert await error_of(response) == "invalid_grant"


async def test_a_refresh_token_that_is_not_a_string_is_422(client: Client) -> None:
    for value in (1, ["x"], {"a": 1}, True):
        response = await client.post("/v1/refresh", json={"refresh_token": value})
        assert response.status == 422
        assert "refresh_token" in (await response.json())["fields"]
