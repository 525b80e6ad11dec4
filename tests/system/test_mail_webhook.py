"""Outbox delivery to the webhook: a real aiohttp receiver checks the signature and the
X-Rotor-Message header, fails first, then accepts; the message is retried, then sent once."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from conftest import FakeClock, MakeClient
from helpers import Client, register
from mail_support import code_in, outbox

from service.config import Settings
from service.web.appkeys import OUTBOX

SECRET = "webhook-signing-secret-0123456789"


@dataclass
class Receiver:
    url: str = ""
    answers: list[int] = field(default_factory=list)  # statuses to give, then 200
    accepted: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bad_signatures: int = 0


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Rotor-Signature", ""), expected):
            state.bad_signatures += 1
            return web.Response(status=401)
        status = state.answers.pop(0) if state.answers else 200
        if status == 200:
            state.accepted.append(orjson.loads(body))
            state.headers.append(dict(request.headers))
        return web.Response(status=status)

    app = web.Application()
    app.router.add_post("/hooks/mail", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    state.url = str(server.make_url("/hooks/mail"))
    yield state
    await server.close()


async def webhook_client(
    make_client: MakeClient, settings: Settings, url: str, secret: str = SECRET
) -> Client:
    mail = replace(
        settings.mail, webhook_url=url, webhook_secret=secret.encode(), poll_interval=None
    )
    return await make_client(mail=mail)


async def test_signed_post_failing_then_accepted(
    make_client: MakeClient,
    settings: Settings,
    receiver: Receiver,
    db: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    client = await webhook_client(make_client, settings, receiver.url)
    await register(client, "ada@example.com")
    receiver.answers = [500, 503]
    delivery = client.app[OUTBOX]
    for _ in range(2):
        assert await delivery.deliver_due() == 1
        [row] = await outbox(db)
        assert row["sent_at"] is None
        assert row["last_error"] == f"the webhook answered HTTP {500 if _ == 0 else 503}"
        clock.now = row["due_at"]
    assert await delivery.deliver_due() == 1
    [body] = receiver.accepted
    [row] = await outbox(db)
    assert set(body) == {"id", "kind", "to", "subject", "text", "html", "created_at"}
    assert body["id"] == str(row["id"]) and body["kind"] == "email_verification"
    assert body["to"] == "ada@example.com" and body["created_at"] == "2026-11-27T12:00:00Z"
    code = code_in(body["text"])
    assert code in body["html"]
    assert receiver.headers[0]["X-Rotor-Message"] == "email_verification"
    assert receiver.bad_signatures == 0
    assert row["sent_at"] is not None and code not in row["text"]
    assert await delivery.deliver_due() == 0 and len(receiver.accepted) == 1


async def test_a_wrong_secret_is_refused_by_the_receiver_and_retried(
    make_client: MakeClient, settings: Settings, receiver: Receiver, db: asyncpg.Connection
) -> None:
    client = await webhook_client(
        make_client, settings, receiver.url, "another-secret-entirely-000"
    )
    await register(client)
    assert await client.app[OUTBOX].deliver_due() == 1
    assert receiver.bad_signatures == 1 and receiver.accepted == []
    [row] = await outbox(db)
    assert row["sent_at"] is None and row["last_error"] == "the webhook answered HTTP 401"
