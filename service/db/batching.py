"""One statement for the hot-path requests that reach the database at the same moment.

Every protected request reads its session row, and every refresh rotates a token: one pool
checkout, one round trip and one PostgreSQL statement each. On the bench machine the send
alone that wakes the PostgreSQL backend cost more than the rest of the request's Python
(docs/performance.md). A Batcher lets requests share that cost: the first to ask opens a batch
and starts a task that takes a pooled connection; every request that asks before that
connection is in hand joins the batch; then one statement answers them all, and the next
asker opens a new batch.

Every statement starts after all its askers asked, so a write committed before a request
arrived (a revocation, a rotation) is always seen. An idle server runs one statement per
request, with no timer and no added wait; the busier the pool, the longer a batch waits for a
connection and the more it carries.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Key = TypeVar("Key", bound=Hashable)
Ask = TypeVar("Ask")
Answer = TypeVar("Answer")

# A bound on one statement's arrays (and on how many requests one failed statement fails).
MAX_BATCH = 256


class _Batch(Generic[Key, Ask, Answer]):
    def __init__(self) -> None:
        self.asks: dict[Key, Ask] = {}
        # One future per asker: a request cancelled while it waits cancels only its own.
        self.answers: dict[Key, asyncio.Future[Answer | None]] = {}

    def pending(self) -> list[asyncio.Future[Answer | None]]:
        return [answer for answer in self.answers.values() if not answer.done()]


class Batcher(Generic[Key, Ask, Answer]):
    """`await batcher.ask(key, ask)` runs `statement(conn, {key: ask, ...})` for a whole batch
    and returns the answer under `key` (None when the statement gave none). Keys are unique
    within a batch: a key already waiting in the open batch opens the next one, so each asker
    gets an answer computed for its own ask."""

    def __init__(
        self,
        engine: AsyncEngine,
        statement: Callable[[AsyncConnection, Mapping[Key, Ask]], Awaitable[Mapping[Key, Answer]]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._engine = engine
        self._statement = statement
        self._max_batch = max_batch
        self._open: _Batch[Key, Ask, Answer] | None = None  # the batch new askers join
        self._tasks: set[asyncio.Task[None]] = set()  # the event loop keeps only weak references

    async def ask(self, key: Key, ask: Ask) -> Answer | None:
        loop = asyncio.get_running_loop()
        batch = self._open
        if batch is None or key in batch.asks or len(batch.asks) >= self._max_batch:
            batch = self._open = _Batch()
            # A fresh context: the task serves many requests and must not log as the first one.
            task = loop.create_task(self._run(batch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        answer: asyncio.Future[Answer | None] = loop.create_future()
        batch.asks[key] = ask
        batch.answers[key] = answer
        return await answer

    async def _run(self, batch: _Batch[Key, Ask, Answer]) -> None:
        try:
            async with self._engine.connect() as conn:
                self._close(batch)  # from here on, askers open the next batch
                results = await self._statement(conn, batch.asks)
        except asyncio.CancelledError:  # shutting down
            self._close(batch)
            for answer in batch.pending():
                answer.cancel()
            raise
        except Exception as exc:  # every asker fails as its own statement would have (503 mostly)
            self._close(batch)
            for answer in batch.pending():
                answer.set_exception(exc)
            return
        for key, answer in batch.answers.items():
            if not answer.done():
                answer.set_result(results.get(key))

    def _close(self, batch: _Batch[Key, Ask, Answer]) -> None:
        if self._open is batch:
            self._open = None
