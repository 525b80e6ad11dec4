"""Revocation timestamps follow the commit order, even when the revoking process's clock lags
(clock readings happen before the row lock is granted, and processes' clocks differ)."""

from __future__ import annotations

from typing import Any

import asyncpg
from conftest import FakeClock
from helpers import bearer, refresh, signed_in

from service.config import Settings
from service.domain.keys import KeySet
from service.web.app import create_app


async def test_revocation_is_never_stamped_before_the_last_rotation(
    aiohttp_client: Any,
    database_url: str,
    db: asyncpg.Connection,
    settings: Settings,
    keys: KeySet,
    clock: FakeClock,
) -> None:
    ahead = FakeClock()
    ahead.advance(5)  # a second process whose clock reads 5 s later
    client = await aiohttp_client(create_app(settings, database_url, keys, clock))
    client_ahead = await aiohttp_client(create_app(settings, database_url, keys, ahead))
    tokens = await signed_in(client)
    rotated = await (await refresh(client_ahead, tokens["refresh_token"])).json()
    # The logout commits after the rotation; its process's clock still reads 5 s earlier.
    assert (await client.post("/v1/logout", headers=bearer(rotated))).status == 204
    row = await db.fetchrow(
        "SELECT s.revoked_at, s.last_used_at, max(t.issued_at) AS last_issued"
        " FROM session s JOIN refresh_token t ON t.session_id = s.id GROUP BY s.id"
    )
    assert row["last_issued"] == ahead.now
    assert row["revoked_at"] >= row["last_issued"]
    assert row["revoked_at"] >= row["last_used_at"]
