"""`rotor outbox`: what waits in the outbox (pending and failed messages, with their text) and
`--retry-failed` to send the failed ones again. For operators, and for local development with
no mail back end configured, where it is how a developer reads the codes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from service.db import outbox
from service.db.outbox import OutboxRow

LIST_LIMIT = 100


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _print(row: OutboxRow, state: str, out: TextIO) -> None:
    print(f"--- {state} {row.kind} {row.id}", file=out)
    print(f"to: {row.recipient}", file=out)
    print(f"subject: {row.subject}", file=out)
    print(f"queued: {_when(row.created_at)}  attempts: {row.attempts}", file=out)
    if state == "pending":
        print(f"next attempt: {_when(row.due_at)}", file=out)
    else:
        print(f"failed: {_when(row.failed_at)}", file=out)
    if row.last_error:
        print(f"last error: {row.last_error}", file=out)
    print("", file=out)
    print(row.text.rstrip("\n"), file=out)
    print("", file=out)


async def show(engine: AsyncEngine, out: TextIO, limit: int = LIST_LIMIT) -> tuple[int, int]:
    """Print the pending then the failed messages (oldest first); their numbers."""
    async with engine.connect() as conn:
        pending = await outbox.list_messages(conn, failed=False, limit=limit)
        failed = await outbox.list_messages(conn, failed=True, limit=limit)
    for row in pending:
        _print(row, "pending", out)
    for row in failed:
        _print(row, "failed", out)
    print(f"pending: {len(pending)}, failed: {len(failed)}", file=out)
    return len(pending), len(failed)


async def retry_failed(engine: AsyncEngine, retry_for: int, now: datetime | None = None) -> int:
    """Every failed message pending again, retried for another `retry_for` seconds."""
    moment = now or datetime.now(UTC)
    async with engine.begin() as conn:
        return await outbox.retry_failed(conn, moment, moment + timedelta(seconds=retry_for))


def command(engine: AsyncEngine, retry: bool, retry_for: int, out: TextIO) -> None:
    """The whole command on one engine (disposed at the end)."""

    async def main() -> None:
        try:
            if retry:
                count = await retry_failed(engine, retry_for)
                print(f"{count} failed message(s) queued again", file=out)
            else:
                await show(engine, out)
        finally:
            await engine.dispose()

    asyncio.run(main())
