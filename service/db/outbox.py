"""Queries of the outbox: messages written in the transaction that causes them, then claimed,
sent and marked by the delivery tasks of every server process. They never commit.

A claim is a lease (`claimed_until`) taken in a short transaction with `FOR UPDATE SKIP LOCKED`:
no transaction stays open while a mail server is slow, several processes never wait on each
other, and a process that dies mid-send loses its lease, so another one retries the message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.models import outbox_message
from service.db.recovery import insert_if


class OutboxRow(NamedTuple):
    id: uuid.UUID
    kind: str
    recipient: str
    subject: str
    text: str
    html: str
    redacted_text: str | None
    redacted_html: str | None
    created_at: datetime
    due_at: datetime
    give_up_at: datetime
    attempts: int
    claimed_until: datetime | None
    sent_at: datetime | None
    failed_at: datetime | None
    last_error: str | None


PENDING = (outbox_message.c.sent_at.is_(None)) & (outbox_message.c.failed_at.is_(None))


async def insert_message_if(conn: AsyncConnection, eligible: bool, values: dict[str, Any]) -> None:
    """Queue a message (unless not `eligible`: then the same statement writes nothing).
    `values` holds every column but the delivery state."""
    row = {**values, "due_at": values["created_at"], "attempts": 0}
    await conn.execute(insert_if(eligible, row, outbox_message))


async def claim_due(
    conn: AsyncConnection, now: datetime, lease_until: datetime, limit: int
) -> list[OutboxRow]:
    """Lease up to `limit` pending messages that are due and not leased by another process."""
    due = (
        select(outbox_message.c.id)
        .where(
            PENDING,
            outbox_message.c.due_at <= now,
            or_(outbox_message.c.claimed_until.is_(None), outbox_message.c.claimed_until <= now),
        )
        .order_by(outbox_message.c.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(outbox_message)
        .where(outbox_message.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=lease_until, attempts=outbox_message.c.attempts + 1)
        .returning(*outbox_message.c)
    )
    return [OutboxRow(**row._mapping) for row in await conn.execute(statement)]


async def mark_sent(conn: AsyncConnection, message_id: uuid.UUID, now: datetime) -> None:
    """Delivered: from now on the stored parts are the masked ones (no code left)."""
    statement = (
        update(outbox_message)
        .where(outbox_message.c.id == message_id)
        .values(
            sent_at=now,
            claimed_until=None,
            last_error=None,
            text=func.coalesce(outbox_message.c.redacted_text, outbox_message.c.text),
            html=func.coalesce(outbox_message.c.redacted_html, outbox_message.c.html),
            redacted_text=None,
            redacted_html=None,
        )
    )
    await conn.execute(statement)


async def schedule_retry(
    conn: AsyncConnection, message_id: uuid.UUID, due_at: datetime, error: str
) -> None:
    statement = (
        update(outbox_message)
        .where(outbox_message.c.id == message_id)
        .values(due_at=due_at, claimed_until=None, last_error=error)
    )
    await conn.execute(statement)


async def mark_failed(
    conn: AsyncConnection, message_id: uuid.UUID, now: datetime, error: str
) -> None:
    statement = (
        update(outbox_message)
        .where(outbox_message.c.id == message_id)
        .values(failed_at=now, claimed_until=None, last_error=error)
    )
    await conn.execute(statement)


async def release(conn: AsyncConnection, message_ids: Sequence[uuid.UUID]) -> None:
    """Give leases back unsent (shutdown): another process may claim them at once. The attempt
    the claim counted is given back too."""
    if not message_ids:
        return
    statement = (
        update(outbox_message)
        .where(outbox_message.c.id.in_(message_ids), PENDING)
        .values(claimed_until=None, attempts=outbox_message.c.attempts - 1)
    )
    await conn.execute(statement)


async def list_messages(conn: AsyncConnection, *, failed: bool, limit: int) -> list[OutboxRow]:
    """Pending (or failed) messages, oldest first."""
    condition: Any = outbox_message.c.failed_at.is_not(None) if failed else PENDING
    statement = (
        select(outbox_message)
        .where(condition)
        .order_by(outbox_message.c.created_at, outbox_message.c.id)
        .limit(limit)
    )
    return [OutboxRow(**row._mapping) for row in await conn.execute(statement)]


async def retry_failed(conn: AsyncConnection, now: datetime, give_up_at: datetime) -> int:
    """Every failed message pending again, due now, retried until `give_up_at`."""
    statement = (
        update(outbox_message)
        .where(outbox_message.c.failed_at.is_not(None))
        .values(failed_at=None, due_at=now, give_up_at=give_up_at, claimed_until=None)
        .returning(outbox_message.c.id)
    )
    return len((await conn.execute(statement)).all())
