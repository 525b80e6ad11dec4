"""The delivery pass on its own: two deliverers never send one message twice; shutdown
finishes the message being sent and gives the other leases back; a lease left by a dead
process expires and the message is sent again (at least once)."""

from __future__ import annotations

import asyncio
import random

import asyncpg
from conftest import FakeClock
from helpers import Client, register
from mail_support import outbox

from service.domain.observer import AuthObserver
from service.ops.mail import Outgoing
from service.ops.outbox import LEASE, OutboxDelivery
from service.web.appkeys import ENGINE


class Recorder:
    """A back end that keeps what it is given; optionally holds the first send until told."""

    def __init__(self, hold_first: bool = False) -> None:
        self.sent: list[Outgoing] = []
        self.started = asyncio.Event()
        self.gate = asyncio.Event()
        if not hold_first:
            self.gate.set()

    async def send(self, message: Outgoing) -> None:
        self.started.set()
        await self.gate.wait()
        self.sent.append(message)

    async def close(self) -> None:
        pass


def deliverer(client: Client, sender: Recorder, clock: FakeClock, **options: int) -> OutboxDelivery:
    return OutboxDelivery(
        client.app[ENGINE], sender, clock, AuthObserver(), rng=random.Random(1), **options
    )


async def test_concurrent_passes_send_each_message_once(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    for number in range(12):
        await register(client, f"u{number}@example.com")
    senders = [Recorder(), Recorder()]
    passes = [deliverer(client, sender, clock, batch_size=3) for sender in senders]
    while sum(await asyncio.gather(*(p.deliver_due() for p in passes))):
        pass
    ids = [message.id for sender in senders for message in sender.sent]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert all(row["sent_at"] is not None for row in await outbox(db))


async def test_shutdown_finishes_the_current_message_and_releases_the_rest(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    for number in range(3):
        await register(client, f"u{number}@example.com")
    sender = Recorder(hold_first=True)
    delivery = deliverer(client, sender, clock)
    delivery.start(poll_interval=3600)
    await sender.started.wait()  # the first message is being sent; all three are leased
    assert sum(row["claimed_until"] is not None for row in await outbox(db)) == 3
    stopping = asyncio.create_task(delivery.stop())
    sender.gate.set()
    await stopping
    rows = await outbox(db)
    assert len(sender.sent) == 1
    assert sum(row["sent_at"] is not None for row in rows) == 1
    released = [row for row in rows if row["sent_at"] is None]
    assert len(released) == 2
    assert all(row["claimed_until"] is None and row["attempts"] == 0 for row in released)


async def test_a_dead_processs_lease_expires_and_the_message_goes_out(
    client: Client, db: asyncpg.Connection, clock: FakeClock
) -> None:
    await register(client)
    now = clock.now
    # A process claimed it, then died before sending or marking it.
    await db.execute("UPDATE outbox_message SET claimed_until = $1, attempts = 1", now + LEASE)
    sender = Recorder()
    delivery = deliverer(client, sender, clock)
    assert await delivery.deliver_due() == 0
    clock.advance(LEASE.total_seconds())
    assert await delivery.deliver_due() == 1
    assert len(sender.sent) == 1
