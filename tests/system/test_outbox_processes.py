"""Outbox delivery by real `rotor serve` processes: two processes on one database send every
message exactly once; a mail server that never answers does not hold up a request; SIGTERM
gives the leases back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import asyncpg
import pytest
from helpers import PASSWORD, register
from mail_support import SmtpSink, code_in
from servers import StartServer, free_port

pytestmark = pytest.mark.slow

USERS = 16
DEADLINE = 60.0


def mail_env(url: str) -> dict[str, str]:
    return {
        "AUTH_SMTP_URL": url,
        "AUTH_MAIL_FROM": "noreply@rotor.test",
        "ROTOR_MAIL_POLL_INTERVAL": "1",
    }


async def _until(check: object, what: str) -> None:
    """Wait (polling) for a condition that the servers bring about on their own."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await check():  # type: ignore[operator]
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_two_processes_send_each_message_once(
    serve: StartServer, smtp_sink: SmtpSink, db: asyncpg.Connection
) -> None:
    a, b = await asyncio.gather(
        serve("a", **mail_env(smtp_sink.url)), serve("b", **mail_env(smtp_sink.url))
    )
    async with a.client() as http_a, b.client() as http_b:
        await asyncio.gather(
            *(
                register(http_a if n % 2 else http_b, f"u{n}@example.com", PASSWORD)
                for n in range(USERS)
            )  # type: ignore[arg-type]
        )

    async def all_sent() -> bool:
        return await db.fetchval("SELECT count(*) FROM outbox_message WHERE sent_at IS NULL") == 0

    await _until(all_sent, "every message to be sent")
    ids = [message["Message-ID"] for message in smtp_sink.received]
    assert len(ids) == USERS and len(set(ids)) == USERS
    assert sorted(str(m["To"]) for m in smtp_sink.received) == sorted(
        f"u{n}@example.com" for n in range(USERS)
    )
    codes = [code_in(m.get_body(("plain",)).get_content()) for m in smtp_sink.received]  # type: ignore[union-attr]
    for server in (a, b):
        server.assert_no_unhandled_errors()
        log = server.stderr()
        assert not [code for code in codes if code in log]  # no code is ever logged


@pytest.fixture
def silent_smtp() -> Iterator[int]:
    """A port that accepts TCP connections and never says a word (a hung mail server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", free_port()))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


async def test_a_hung_mail_server_holds_up_no_request_and_sigterm_releases_the_lease(
    serve: StartServer, silent_smtp: int, smtp_sink: SmtpSink, db: asyncpg.Connection
) -> None:
    server = await serve("a", **mail_env(f"smtp://127.0.0.1:{silent_smtp}"))
    async with server.client() as http:
        await register(http, "ada@example.com", PASSWORD)  # type: ignore[arg-type]

        async def leased() -> bool:
            return bool(await db.fetchval("SELECT claimed_until IS NOT NULL FROM outbox_message"))

        await _until(leased, "the delivery task to take the message")
        # The delivery task is stuck on the silent server; requests are served all the same.
        await register(http, "bob@example.com", PASSWORD)  # type: ignore[arg-type]
        async with http.get("/readyz") as response:
            assert response.status == 200
    server.stop()
    rows = await db.fetch("SELECT claimed_until, sent_at FROM outbox_message")
    assert len(rows) == 2
    assert all(row["claimed_until"] is None and row["sent_at"] is None for row in rows)
    # Restarted with a working mail server: both go out, once each.
    await serve("again", **mail_env(smtp_sink.url))

    async def all_sent() -> bool:
        return await db.fetchval("SELECT count(*) FROM outbox_message WHERE sent_at IS NULL") == 0

    await _until(all_sent, "both messages to be sent after the restart")
    assert sorted(str(m["To"]) for m in smtp_sink.received) == [
        "ada@example.com",
        "bob@example.com",
    ]
