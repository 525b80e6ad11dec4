"""The client IP behind trusted proxies, and what a client cannot spoof."""

from __future__ import annotations

import ipaddress
from typing import Any

from helpers import Client, signed_in


async def _recorded_ip(client: Client, db: Any, headers: dict[str, str]) -> str:
    await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": "x" * 8}, headers=headers
    )
    row = await db.fetchrow("SELECT key FROM login_failure WHERE kind = 'ip'")
    await db.execute("DELETE FROM login_failure")
    return str(row["key"])


async def test_forwarded_for_is_ignored_from_untrusted_peers(client: Client, db: Any) -> None:
    await signed_in(client)
    ip = await _recorded_ip(client, db, {"X-Forwarded-For": "203.0.113.9"})
    assert ip == "127.0.0.1"


async def test_rightmost_untrusted_hop_behind_trusted_proxies(make_client: Any, db: Any) -> None:
    client = await make_client(
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8"))
    )
    await signed_in(client)
    # The client wrote 198.51.100.7 itself; our proxies appended the real address and 10.1.2.3.
    headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9, 10.1.2.3"}
    assert await _recorded_ip(client, db, headers) == "203.0.113.9"
    assert (
        await _recorded_ip(client, db, {"X-Forwarded-For": "garbage, 203.0.113.5"}) == "203.0.113.5"
    )
    assert await _recorded_ip(client, db, {}) == "127.0.0.1"
