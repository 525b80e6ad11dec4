"""Pruning through the real app: what goes when, and that no client sees a different answer."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import asyncpg
import pytest
from helpers import Client, bearer, error_of, login, refresh, register, signed_in

from service.flows.pruning import PruneCounts, Pruner, run_periodically
from service.web.appkeys import ENGINE, PRUNE_TASK, SETTINGS

IDLE = 3600  # the test settings' AUTH_SESSION_IDLE_TTL
MAX = 86_400  # AUTH_SESSION_MAX_TTL
WINDOW = 600  # AUTH_LOGIN_WINDOW


async def _prune(client: Client, clock: Any) -> PruneCounts:
    return await Pruner(client.app[ENGINE], client.app[SETTINGS], clock, batch_size=2).run()


async def _count(db: asyncpg.Connection, table: str) -> int:
    return int(await db.fetchval(f"SELECT count(*) FROM {table}"))  # noqa: S608 (fixed names)


async def test_idle_session_goes_with_its_tokens_and_live_ones_stay(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    idle = await signed_in(client)
    await refresh(client, idle["refresh_token"])  # two tokens in the chain
    clock.advance(IDLE - 60)
    live = await login(client)
    clock.advance(61)  # `idle` is now past its idle end; `live` is not
    # codes=1: the registration's verification code, past AUTH_CODE_TTL
    assert await _prune(client, clock) == PruneCounts(idle_sessions=1, refresh_tokens=2, codes=1)
    assert await db.fetchval("SELECT array_agg(id) FROM session") == [uuid.UUID(live["session_id"])]
    response = await refresh(client, idle["refresh_token"])
    assert response.status == 401
    assert await error_of(response) == "invalid_grant"
    assert (await refresh(client, live["refresh_token"])).status == 200
    assert await _prune(client, clock) == PruneCounts()


async def test_session_past_its_absolute_end_is_deleted(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    step, steps = IDLE - 100, MAX // (IDLE - 100)
    for _ in range(steps):  # keep it refreshed: only its absolute end can end it
        clock.advance(step)
        tokens = await (await refresh(client, tokens["refresh_token"])).json()
    clock.advance(MAX - step * steps - 1)
    # codes=1: the registration's verification code, past AUTH_CODE_TTL
    assert await _prune(client, clock) == PruneCounts(codes=1)
    clock.advance(1)  # at the absolute end, well before the idle end
    chain = await _count(db, "refresh_token")
    assert await _prune(client, clock) == PruneCounts(expired_sessions=1, refresh_tokens=chain)
    assert await _count(db, "session") == 0
    assert await _count(db, "refresh_token") == 0


async def test_revoked_session_stays_until_its_tokens_have_expired(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    assert (await client.post("/v1/logout", headers=bearer(tokens))).status == 204
    clock.advance(IDLE - 1)
    # Its refresh token has not expired: the session stays, so logout with that token is
    # still the idempotent 204 of POST /v1/logout and a refresh is still invalid_grant.
    # codes=1: the registration's verification code, past AUTH_CODE_TTL
    assert await _prune(client, clock) == PruneCounts(codes=1)
    response = await client.post("/v1/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 204
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401
    assert await error_of(response) == "invalid_grant"
    clock.advance(1)
    assert await _prune(client, clock) == PruneCounts(revoked_sessions=1, refresh_tokens=1)
    assert await _count(db, "session") == 0
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401
    assert await error_of(response) == "invalid_grant"


async def test_spent_tokens_of_a_live_session_survive_so_reuse_is_still_caught(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    rotated = await (await refresh(client, tokens["refresh_token"])).json()
    clock.advance(IDLE - 1)
    # codes=1: the registration's verification code, past AUTH_CODE_TTL
    assert await _prune(client, clock) == PruneCounts(codes=1)
    assert await _count(db, "refresh_token") == 2
    response = await refresh(client, tokens["refresh_token"])
    assert response.status == 401
    assert await error_of(response) == "token_reused"
    response = await refresh(client, rotated["refresh_token"])
    assert response.status == 401
    assert await error_of(response) == "invalid_grant"


async def test_login_failure_counters_go_once_their_window_is_over(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": "x" * 8}
    )
    assert response.status == 401
    assert await _count(db, "login_failure") == 2  # the account's and the IP's
    clock.advance(WINDOW - 1)
    assert await _prune(client, clock) == PruneCounts()
    clock.advance(1)
    assert await _prune(client, clock) == PruneCounts(login_failures=2)
    assert await _count(db, "login_failure") == 0


async def test_server_prunes_periodically_and_stops_on_shutdown(
    make_client: Any, clock: Any, db: asyncpg.Connection
) -> None:
    client = await make_client(prune_interval=1)
    await signed_in(client)
    task = client.app[PRUNE_TASK]
    clock.advance(IDLE)
    for _ in range(200):  # bounded wait for the outcome (the interval is one real second)
        if await _count(db, "session") == 0:
            break
        await asyncio.sleep(0.05)
    assert await _count(db, "session") == 0
    assert await _count(db, "refresh_token") == 0
    assert not task.done()
    await client.close()
    assert task.cancelled()


async def test_no_task_without_an_interval(client: Client) -> None:
    assert PRUNE_TASK not in client.app


async def test_a_failed_periodic_run_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []

    class FlakyPruner:
        async def run(self) -> PruneCounts:
            runs.append(1)
            if len(runs) == 1:
                raise OSError("database went away")
            if len(runs) == 3:
                raise asyncio.CancelledError
            return PruneCounts(idle_sessions=7)

    async def no_sleep(_: float) -> None:
        return None

    with (
        caplog.at_level(logging.INFO, logger="service.flows.pruning"),
        pytest.raises(asyncio.CancelledError),
    ):
        await run_periodically(FlakyPruner(), 60, sleep=no_sleep)  # type: ignore[arg-type]
    assert len(runs) == 3
    assert "run failed (OSError)" in caplog.text
    assert "idle_sessions=7" in caplog.text
    assert "database went away" not in caplog.text


async def test_audit_events_go_after_the_retention_period(
    make_client: Any, clock: Any, db: asyncpg.Connection
) -> None:
    client = await make_client(
        event_retention_days=1, session_idle_ttl=10 * 86_400, session_max_ttl=10 * 86_400
    )
    tokens = await signed_in(client)  # a login event
    await client.post("/v1/logout", headers=bearer(tokens))  # its revocation events
    old_events = await _count(db, "auth_event")
    assert old_events >= 2
    clock.advance(86_400 - 1)
    await login(client)  # a newer event, kept
    assert (await _prune(client, clock)).auth_events == 0
    clock.advance(2)
    assert (await _prune(client, clock)).auth_events == old_events
    assert await _count(db, "auth_event") == 1
