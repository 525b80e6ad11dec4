"""The session check of protected requests, shared by the requests that ask at the same moment.

Every protected request must see its session row as it is now (revocation is immediate), so each
one needs a database read. One read per request costs a pool checkout, a round trip and a
PostgreSQL statement each: under load that was most of `GET /v1/me`'s time (README,
Performance). Here the first request to ask opens a batch and starts a task that takes a pooled
connection; every request that asks before that connection is in hand joins the batch; then one
`WHERE id = ANY($1)` answers them all, and the next asker opens a new batch.

Every answer is read after its request asked, so a revocation committed before a request
arrived is always seen. An idle server runs one batch per request, with no timer and no added
wait; the busier the pool, the longer a batch waits for a connection and the more it carries.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import queries
from service.db.queries import SessionWithUser

# A bound on one statement's array (and on how many requests one failed read answers with 503).
MAX_BATCH = 256

_Waiters = dict[uuid.UUID, list[asyncio.Future[SessionWithUser | None]]]


class SessionLookup:
    def __init__(self, engine: AsyncEngine, max_batch: int = MAX_BATCH) -> None:
        self._engine = engine
        self._max_batch = max_batch
        self._open: _Waiters | None = None  # the batch that new askers join
        self._tasks: set[asyncio.Task[None]] = set()  # the event loop keeps only weak references

    async def find(self, session_id: uuid.UUID, user_id: uuid.UUID) -> SessionWithUser | None:
        """The session with this id if it belongs to this user, with its user; live or not."""
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or len(batch) >= self._max_batch:
            batch = self._open = {}
            # A fresh context: the task serves many requests and must not log as the first one.
            task = loop.create_task(self._read(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # One future per asker: a request cancelled while it waits cancels only its own.
        answer: asyncio.Future[SessionWithUser | None] = loop.create_future()
        batch.setdefault(session_id, []).append(answer)
        row = await answer
        return row if row is not None and row.user_id == user_id else None

    async def _read(self, batch: _Waiters) -> None:
        try:
            async with self._engine.connect() as conn:
                self._close(batch)  # from here on, askers start the next batch
                rows = await queries.find_sessions_with_users(conn, list(batch))
        except asyncio.CancelledError:  # shutting down
            self._close(batch)
            for answer in _pending(batch):
                answer.cancel()
            raise
        except Exception as exc:  # every asker fails as its own read would have (503 mostly)
            self._close(batch)
            for answer in _pending(batch):
                answer.set_exception(exc)
            return
        for session_id, answers in batch.items():
            row = rows.get(session_id)
            for answer in answers:
                if not answer.done():
                    answer.set_result(row)

    def _close(self, batch: _Waiters) -> None:
        if self._open is batch:
            self._open = None


def _pending(batch: _Waiters) -> list[asyncio.Future[SessionWithUser | None]]:
    return [answer for answers in batch.values() for answer in answers if not answer.done()]
