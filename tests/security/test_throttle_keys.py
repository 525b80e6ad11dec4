"""Point 7: the per-IP counters cannot be dodged by hopping addresses: an IPv6 client is
counted by its /64, an IPv4-mapped IPv6 address as its IPv4 address."""

from __future__ import annotations

import ipaddress
from typing import Any

import asyncpg
import pytest

from service.flows.throttle import ip_key

PROXY = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("203.0.113.5", "203.0.113.5"),
        ("::1", "::/64"),
    ],
)
def test_the_key_of_an_address(address: str, key: str) -> None:
    assert ip_key(address) == key


async def _fail(client: Any, number: int, forwarded_for: str) -> int:
    response = await client.post(
        "/v1/login",
        json={"email": f"nobody{number}@example.com", "password": "wrong password"},
        headers={"X-Forwarded-For": forwarded_for},
    )
    return int(response.status)


async def test_addresses_of_one_ipv6_64_share_a_counter(make_client: Any) -> None:
    client = await make_client(trusted_proxies=PROXY, login_max_failures=1)  # IP limit: 10
    for number in range(10):
        assert await _fail(client, number, f"2001:db8:1:2::{number + 1:x}") == 401
    assert await _fail(client, 10, "2001:db8:1:2:aaaa::1") == 429
    assert await _fail(client, 11, "2001:db8:1:3::1") == 401  # another /64


async def test_a_mapped_address_is_its_ipv4_address(
    make_client: Any, db: asyncpg.Connection
) -> None:
    client = await make_client(trusted_proxies=PROXY, login_max_failures=1)
    for number in range(10):
        forwarded = "::ffff:203.0.113.5" if number % 2 else "203.0.113.5"
        assert await _fail(client, number, forwarded) == 401
    assert await _fail(client, 10, "::ffff:203.0.113.5") == 429
    assert await _fail(client, 11, "203.0.113.5") == 429
    keys = await db.fetch("SELECT key FROM login_failure WHERE kind = 'ip'")
    assert [row["key"] for row in keys] == ["203.0.113.5"]
