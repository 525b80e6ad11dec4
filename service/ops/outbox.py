"""Outbox delivery: a task in every `rotor serve` process sends what the flows queued.

One pass (`deliver_due`, which tests call directly with an injected clock) leases the due
messages in a short transaction (`FOR UPDATE SKIP LOCKED`, so processes never take the same row),
sends each with no transaction open, then marks it sent (its stored text losing the code), or
schedules a retry with exponential backoff and jitter, or, past its `give_up_at`
(AUTH_MAIL_RETRY_FOR after it was queued), marks it failed with the last error. The loop (`run`)
repeats passes and sleeps while there is nothing to do; delivery never holds up a request.

At least once, not exactly once: a process that dies after the mail server accepted a message
but before marking it sent leaves a lease that expires, and another process sends it again with
the same Message-ID. Shutdown (`stop`) lets the message being sent finish and gives the other
leases back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import outbox
from service.db.outbox import OutboxRow
from service.domain.clock import Clock
from service.domain.observer import AuthObserver, MessageOutcome
from service.ops.mail import DeliveryError, Outgoing, Sender

logger = logging.getLogger(__name__)

BATCH_SIZE = 20
# Longer than any send can take (SMTP and webhook time out well before), so a lease only ever
# expires when its process died.
LEASE = timedelta(minutes=5)
FIRST_RETRY = 5.0
MAX_RETRY = 900.0


class OutboxDelivery:
    def __init__(
        self,
        engine: AsyncEngine,
        sender: Sender | None,
        clock: Clock,
        observer: AuthObserver,
        *,
        batch_size: int = BATCH_SIZE,
        rng: random.Random | None = None,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._clock = clock
        self._observer = observer
        self._batch_size = batch_size
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not a secret)
        self._stopping = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failed ones: doubling from FIRST_RETRY
        up to MAX_RETRY, each drawn in [half, all] of that so that retries spread out."""
        delay: float = min(MAX_RETRY, FIRST_RETRY * 2.0 ** max(0, attempts - 1))
        jitter: float = self._rng.uniform(0.5, 1.0)
        return delay * jitter

    async def deliver_due(self) -> int:
        """One pass over the due messages; how many were tried."""
        if self._sender is None:
            return 0
        now = self._clock()
        async with self._engine.begin() as conn:
            rows = await outbox.claim_due(conn, now, now + LEASE, self._batch_size)
        pending = {row.id: row for row in rows}
        try:
            for row in rows:
                if self._stopping:
                    break
                await self._deliver(self._sender, row)
                del pending[row.id]
        finally:
            if pending:
                # Shutting down (or cancelled): another process may take these at once.
                async with self._engine.begin() as conn:
                    await outbox.release(conn, list(pending))
        return len(rows) - len(pending)

    async def _deliver(self, sender: Sender, row: OutboxRow) -> None:
        error: str | None = None
        try:
            await sender.send(_outgoing(row))
        except DeliveryError as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a back end must not stop delivery of the others
            error = type(exc).__name__
        now = self._clock()
        outcome: MessageOutcome
        async with self._engine.begin() as conn:
            if error is None:
                await outbox.mark_sent(conn, row.id, now)
                outcome = "sent"
            elif now >= row.give_up_at:
                await outbox.mark_failed(conn, row.id, now, error)
                outcome = "failed"
            else:
                due = min(now + timedelta(seconds=self.backoff(row.attempts)), row.give_up_at)
                await outbox.schedule_retry(conn, row.id, due, error)
                outcome = "retried"
        if outcome == "failed":
            logger.warning("outbox: gave up on %s message %s (%s)", row.kind, row.id, error)
        elif outcome == "retried":
            logger.info("outbox: %s message %s not delivered (%s)", row.kind, row.id, error)
        self._observer.on_message(row.kind, outcome)

    # --- the task ----------------------------------------------------------------------------

    async def run(self, poll_interval: float) -> None:
        """Deliver until stopped: a full batch is followed at once by the next pass, otherwise
        the task waits `poll_interval` seconds (or for `wake`)."""
        while not self._stopping:
            try:
                tried = await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The database is down, say: try again later. No text: it may quote values.
                logger.warning("outbox: delivery pass failed (%s)", type(exc).__name__)
                tried = 0
            if tried < self._batch_size and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), poll_interval)

    def start(self, poll_interval: float) -> None:
        self._task = asyncio.create_task(self.run(poll_interval))

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Finish the message being sent, give the other leases back, end the task; cancel it
        (leases still given back) if that takes longer than `grace` seconds."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), grace)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._sender is not None:
            await self._sender.close()


def _outgoing(row: OutboxRow) -> Outgoing:
    message_id: uuid.UUID = row.id
    return Outgoing(
        id=str(message_id),
        kind=row.kind,
        to=row.recipient,
        subject=row.subject,
        text=row.text,
        html=row.html,
        created_at=row.created_at,
    )
