"""Pruning of one-time codes past their end and of delivered or failed messages past
AUTH_EVENT_RETENTION; pending messages always stay."""

from __future__ import annotations

from typing import Any

import asyncpg
from helpers import Client, register

from service.flows.pruning import Pruner
from service.web.appkeys import ENGINE, SETTINGS


async def _prune(client: Client, clock: Any) -> Any:
    return await Pruner(client.app[ENGINE], client.app[SETTINGS], clock, batch_size=2).run()


async def test_expired_codes_go_and_live_ones_stay(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    for number in range(3):
        await register(client, f"u{number}@example.com")
    clock.advance(899)
    await register(client, "late@example.com")
    clock.advance(1)  # the first three codes are at their end (AUTH_CODE_TTL 900)
    counts = await _prune(client, clock)
    assert counts.codes == 3
    assert await db.fetchval("SELECT count(*) FROM one_time_code") == 1
    assert (await _prune(client, clock)).codes == 0


async def test_finished_messages_go_after_the_retention_and_pending_ones_stay(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    for number in range(3):
        await register(client, f"u{number}@example.com")
    await db.execute(
        "UPDATE outbox_message SET sent_at = $1 WHERE recipient = 'u0@example.com'", clock.now
    )
    await db.execute(
        "UPDATE outbox_message SET failed_at = $1 WHERE recipient = 'u1@example.com'", clock.now
    )
    clock.advance(90 * 86_400 - 1)  # AUTH_EVENT_RETENTION default: not yet
    assert (await _prune(client, clock)).messages == 0
    clock.advance(1)
    assert (await _prune(client, clock)).messages == 2
    rows = await db.fetch("SELECT recipient FROM outbox_message")
    assert [row["recipient"] for row in rows] == ["u2@example.com"]  # pending: kept
