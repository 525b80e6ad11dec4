"""Pruning: delete sessions that have ended for good (their tokens go with them) and login
throttle counters whose window is over, in bounded batches of one short transaction each.

What is deleted, and why no client sees a different answer afterwards:
- a session past its absolute end, or not refreshed for the idle TTL: every token it issued has
  expired (a token never outlives last_used_at + idle TTL, nor the absolute end), so a refresh
  gets 401 invalid_grant whether the rows exist or not;
- a revoked session, once its tokens have expired as above: until then its rows stay, so that a
  refresh still gets invalid_grant and a logout naming it by an unexpired refresh token still
  gets 204 (idempotent logout), as if nothing had been pruned;
- a login failure counter whose window is over: the throttle ignores it and the next failure
  would restart it at 1;
- an audit event older than AUTH_EVENT_RETENTION days;
- a one-time code past its AUTH_CODE_TTL: no check accepts it;
- an outbox message delivered (its code already masked) or failed AUTH_EVENT_RETENTION days ago.
- the one-time-use record of an ID token past its `exp` (plus the verification leeway and a
  margin): the token itself is refused as expired.
A refresh token is never deleted while its session lives: reuse detection needs every spent one.

Used by `rotor prune` (cron) and, with AUTH_PRUNE_INTERVAL, by a task inside each server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.config import Settings
from service.db import events, pruning
from service.db.pruning import Deleted
from service.domain.clock import Clock, system_clock

logger = logging.getLogger(__name__)

BATCH_SIZE = 1000
# A batch waits at most this long for a row lock (only the cascade to refresh_token can wait,
# on a refresh that holds a token). Shorter than PostgreSQL's deadlock_timeout (1 s), so in a lock
# cycle it is always the pruning batch that gives up, never a request.
LOCK_TIMEOUT_MS = 200
LOCK_NOT_AVAILABLE = "55P03"
ID_TOKEN_MARGIN = timedelta(minutes=5)

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """Rows deleted by one run; each session is counted under the first rule that took it."""

    expired_sessions: int = 0
    revoked_sessions: int = 0
    idle_sessions: int = 0
    refresh_tokens: int = 0
    login_failures: int = 0
    auth_events: int = 0
    codes: int = 0
    messages: int = 0
    id_tokens: int = 0

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(PruneCounts))
        )

    def summary(self) -> str:
        return " ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(PruneCounts))


def _is_lock_timeout(error: DBAPIError) -> bool:
    return getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE


class Pruner:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        clock: Clock = system_clock,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._batch_size = batch_size

    async def run(self) -> PruneCounts:
        """One full pass. Rows that another process holds are left for the next run."""
        now = self._clock()
        idle_cutoff = now - timedelta(seconds=self._settings.session_idle_ttl)
        window_cutoff = now - timedelta(seconds=self._settings.login_window)
        limit = self._batch_size

        expired = await self._drain(lambda c: pruning.delete_past_absolute_end(c, now, limit))
        revoked = await self._drain(lambda c: pruning.delete_revoked(c, idle_cutoff, limit))
        idle = await self._scan_idle(idle_cutoff)
        events_cutoff = now - timedelta(days=self._settings.event_retention_days)
        failures = await self._drain_rows(
            lambda c: pruning.delete_stale_login_failures(c, window_cutoff, limit)
        )
        pruned_events = await self._drain_rows(
            lambda c: events.prune_auth_events(c, events_cutoff, limit)
        )
        codes = await self._drain_rows(lambda c: pruning.delete_expired_codes(c, now, limit))
        messages = await self._drain_rows(
            lambda c: pruning.delete_old_messages(c, events_cutoff, limit)
        )
        # Past the 30 s leeway that `exp` gets, with a margin for clocks of other processes.
        tokens_cutoff = now - ID_TOKEN_MARGIN
        id_tokens = await self._drain_rows(
            lambda c: pruning.delete_spent_id_tokens(c, tokens_cutoff, limit)
        )
        return PruneCounts(
            codes=codes,
            messages=messages,
            expired_sessions=expired.sessions,
            revoked_sessions=revoked.sessions,
            idle_sessions=idle.sessions,
            refresh_tokens=expired.refresh_tokens + revoked.refresh_tokens + idle.refresh_tokens,
            login_failures=failures,
            auth_events=pruned_events,
            id_tokens=id_tokens,
        )

    async def _drain_rows(self, step: Callable[[AsyncConnection], Awaitable[int]]) -> int:
        """Repeat a batch that returns its row count until it comes back short."""
        deleted = 0
        while True:
            batch = await self._batch(step)
            deleted += batch or 0
            if batch is None or batch < self._batch_size:
                return deleted

    async def _drain(self, step: Callable[[AsyncConnection], Awaitable[Deleted]]) -> Deleted:
        """Repeat an indexed batch until it comes back short (nothing left, or all held)."""
        sessions = tokens = 0
        while True:
            batch = await self._batch(step)
            if batch is None:
                break
            sessions += batch.sessions
            tokens += batch.refresh_tokens
            if batch.sessions < self._batch_size:
                break
        return Deleted(sessions=sessions, refresh_tokens=tokens)

    async def _scan_idle(self, idle_cutoff: datetime) -> Deleted:
        """Walk every session id once, a window of batch_size rows per transaction."""
        sessions = tokens = 0
        after = pruning.FIRST_ID
        while True:
            async with self._engine.connect() as conn:
                until = await pruning.next_scan_end(conn, after, self._batch_size)
            if until is None:
                break
            step = partial(
                pruning.delete_idle_in_window,
                after=after,
                until=until,
                idle_cutoff=idle_cutoff,
                limit=self._batch_size,
            )
            batch = await self._batch(step)
            if batch is not None:
                sessions += batch.sessions
                tokens += batch.refresh_tokens
            after = until
        return Deleted(sessions=sessions, refresh_tokens=tokens)

    async def _batch(self, step: Callable[[AsyncConnection], Awaitable[R]]) -> R | None:
        """One batch in its own transaction; None when it gave way to a lock held by a request."""
        try:
            async with self._engine.begin() as conn:
                await conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")
                return await step(conn)
        except DBAPIError as exc:
            if not _is_lock_timeout(exc):
                raise
            logger.info("prune: a batch gave way to a lock held by a request; next run retries")
            return None


async def run_periodically(
    pruner: Pruner,
    interval: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Prune every `interval` seconds until cancelled; a failed run is logged, not fatal."""
    while True:
        await sleep(interval)
        try:
            counts = await pruner.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # No message text: a driver error may quote bound values.
            logger.warning("prune: run failed (%s); retrying in %s s", type(exc).__name__, interval)
            continue
        logger.info("prune: deleted %s", counts.summary())
