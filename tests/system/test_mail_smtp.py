"""Outbox delivery over SMTP to a real server (aiosmtpd): headers, parts and code; the code
gone from the stored text once sent; a server down then up; giving up after
AUTH_MAIL_RETRY_FOR; a rolled-back register; STARTTLS, implicit TLS and AUTH; metrics."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
from aiosmtpd.smtp import AuthResult
from conftest import FakeClock, MakeClient
from helpers import Client, register
from mail_support import SmtpSink, code_in, outbox, self_signed_certificate, server_tls_context

from service.config import Settings
from service.ops.outbox import MAX_RETRY
from service.web.appkeys import OUTBOX

FROM = "Rotor <noreply@rotor.test>"


async def smtp_client(make_client: MakeClient, settings: Settings, url: str, **more: Any) -> Client:
    mail = replace(settings.mail, smtp_url=url, mail_from=FROM, poll_interval=None)
    return await make_client(mail=mail, **more)


async def test_message_arrives_with_headers_parts_and_code_then_the_code_is_scrubbed(
    make_client: MakeClient, settings: Settings, smtp_sink: SmtpSink, db: asyncpg.Connection
) -> None:
    client = await smtp_client(make_client, settings, smtp_sink.url)
    await register(client, "Ada@Example.com")
    assert await client.app[OUTBOX].deliver_due() == 1
    [message] = smtp_sink.received
    [row] = await outbox(db)
    assert message["From"] == FROM and message["To"] == "Ada@Example.com"
    assert message["X-Rotor-Message"] == "email_verification"
    assert message["Message-ID"] == f"<{row['id']}@rotor.test>"
    assert "verification code" in message["Subject"]
    assert smtp_sink.envelopes == [("noreply@rotor.test", ["Ada@Example.com"])]
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    code = code_in(text.get_content())
    assert code in html.get_content()
    # Delivered: marked sent, and what is stored no longer holds the code.
    [row] = await outbox(db)
    assert row["sent_at"] is not None and row["attempts"] == 1
    assert code not in row["text"] and code not in row["html"] and "********" in row["text"]
    assert row["redacted_text"] is None and row["redacted_html"] is None
    # It is the right code, and nothing is sent twice.
    response = await client.post(
        "/v1/email/verify", json={"email": "ada@example.com", "code": code}
    )
    assert response.status == 200
    assert await client.app[OUTBOX].deliver_due() == 0
    assert len(smtp_sink.received) == 1


async def test_server_down_then_up_delivers_with_backoff_and_metrics(
    make_client: MakeClient,
    settings: Settings,
    smtp_sink: SmtpSink,
    db: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    client = await smtp_client(make_client, settings, smtp_sink.url, metrics=True)
    smtp_sink.stop()
    await register(client)
    delivery = client.app[OUTBOX]
    for attempt in range(1, 4):
        assert await delivery.deliver_due() == 1
        [row] = await outbox(db)
        assert row["sent_at"] is None and row["attempts"] == attempt
        assert row["last_error"] and code_in(row["text"]) not in row["last_error"]
        wait = (row["due_at"] - clock.now).total_seconds()
        # Exponential with jitter: within [half, all] of 5 s, 10 s, 20 s.
        assert 5 * 2 ** (attempt - 1) / 2 <= wait <= 5 * 2 ** (attempt - 1)
        assert await delivery.deliver_due() == 0  # not due yet
        clock.advance(wait)
    smtp_sink.start()
    assert await delivery.deliver_due() == 1
    assert len(smtp_sink.received) == 1
    [row] = await outbox(db)
    assert row["sent_at"] is not None and row["last_error"] is None
    metrics = await (await client.get("/metrics")).text()
    assert 'rotor_messages_total{kind="email_verification",outcome="retried"} 3.0' in metrics
    assert 'rotor_messages_total{kind="email_verification",outcome="sent"} 1.0' in metrics
    assert 'rotor_messages_total{kind="password_reset",outcome="sent"} 0.0' in metrics
    # The mail server being down never made the service unready.
    assert (await client.get("/readyz")).status == 200


async def test_hours_down_is_retried_until_retry_for_then_failed(
    make_client: MakeClient,
    settings: Settings,
    smtp_sink: SmtpSink,
    db: asyncpg.Connection,
    clock: FakeClock,
) -> None:
    hours = 4 * 3600
    mail = replace(
        settings.mail,
        smtp_url=smtp_sink.url,
        mail_from=FROM,
        poll_interval=None,
        retry_for=hours,
    )
    client = await make_client(mail=mail, metrics=True)
    smtp_sink.refuse = True  # 451 to every message
    await register(client)
    delivery = client.app[OUTBOX]
    tries = 0
    while (await outbox(db))[0]["failed_at"] is None:
        assert await delivery.deliver_due() == 1
        tries += 1
        [row] = await outbox(db)
        assert (row["due_at"] - clock.now).total_seconds() <= MAX_RETRY
        clock.now = max(clock.now, row["due_at"])
    # AUTH_MAIL_RETRY_FOR of backoff capped at MAX_RETRY: many tries, then done.
    assert tries > hours / MAX_RETRY
    [row] = await outbox(db)
    assert row["last_error"] == "SMTPDataError: SMTP status 451"
    assert (row["failed_at"] - row["created_at"]).total_seconds() == hours
    assert await delivery.deliver_due() == 0
    metrics = await (await client.get("/metrics")).text()
    assert 'rotor_messages_total{kind="email_verification",outcome="failed"} 1.0' in metrics


async def test_a_rolled_back_register_sends_nothing(
    make_client: MakeClient,
    settings: Settings,
    smtp_sink: SmtpSink,
    db: asyncpg.Connection,
    database_url: str,
) -> None:
    client = await smtp_client(make_client, settings, smtp_sink.url, db_statement_timeout=1.0)
    blocker = await asyncpg.connect(database_url)
    try:
        transaction = blocker.transaction()
        await transaction.start()
        # Inserts into the outbox wait on this lock: register's transaction times out and rolls
        # back after it has written the user and the code.
        await blocker.execute("LOCK TABLE outbox_message IN SHARE MODE")
        response = await client.post(
            "/v1/register", json={"email": "ada@example.com", "password": "long enough pass"}
        )
        assert response.status == 503
        await transaction.rollback()
    finally:
        await blocker.close()
    assert await db.fetchval('SELECT count(*) FROM "user"') == 0
    assert await db.fetchval("SELECT count(*) FROM one_time_code") == 0
    assert await client.app[OUTBOX].deliver_due() == 0
    assert smtp_sink.received == []


async def test_starttls_required_with_authentication(
    make_client: MakeClient, settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret:/pass")

    sink = SmtpSink(
        tls_context=server_tls_context(cert, key),
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    sink.start()
    try:
        url = f"smtp://mailer:s3cret%3A%2Fpass@127.0.0.1:{sink.port}?starttls=require&cafile={cert}"
        client = await smtp_client(make_client, settings, url)
        await register(client)
        assert await client.app[OUTBOX].deliver_due() == 1
        assert len(sink.received) == 1 and logins == [(b"mailer", b"s3cret:/pass")]
    finally:
        sink.stop()


async def test_implicit_tls(make_client: MakeClient, settings: Settings, tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    sink = SmtpSink(ssl_context=server_tls_context(cert, key))
    sink.start()
    try:
        client = await smtp_client(
            make_client, settings, f"smtps://127.0.0.1:{sink.port}?cafile={cert}"
        )
        await register(client)
        assert await client.app[OUTBOX].deliver_due() == 1
        assert len(sink.received) == 1
    finally:
        sink.stop()
