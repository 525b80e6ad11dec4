"""Point 3: 409 email_taken cannot test addresses at speed: past ten times
AUTH_LOGIN_MAX_FAILURES registrations of taken addresses per window, a client IP gets 429."""

from __future__ import annotations

from typing import Any

from helpers import PASSWORD, error_of, register


async def test_registering_taken_addresses_is_throttled_per_ip(
    make_client: Any, clock: Any
) -> None:
    client = await make_client(login_max_failures=2)  # the IP's limit: 20
    await register(client)
    taken = {"email": "ada@example.com", "password": PASSWORD}
    for _ in range(20):
        assert (await client.post("/v1/register", json=taken)).status == 409
    response = await client.post("/v1/register", json=taken)
    assert response.status == 429
    assert await error_of(response) == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    # The whole IP waits, whatever the address.
    fresh = {"email": "new@example.com", "password": PASSWORD}
    assert (await client.post("/v1/register", json=fresh)).status == 429
    clock.advance(601)
    assert (await client.post("/v1/register", json=fresh)).status == 201


async def test_new_addresses_are_not_counted(make_client: Any) -> None:
    client = await make_client(login_max_failures=1)  # the IP's limit: 10
    for number in range(12):
        await register(client, f"user{number}@example.com")
