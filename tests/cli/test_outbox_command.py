"""`rotor outbox`: pending and failed messages with their text (local development reads codes
there), and --retry-failed."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from helpers import Client, register
from mail_support import latest_code

from service import cli


async def rotor_outbox(monkeypatch: pytest.MonkeyPatch, database_url: str, *args: str) -> int:
    monkeypatch.setenv("DATABASE_URL", database_url)
    return await asyncio.to_thread(cli.main, ["outbox", *args])


async def test_lists_pending_and_failed_messages_with_their_text(
    client: Client,
    db: asyncpg.Connection,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await register(client, "ada@example.com")
    await register(client, "bob@example.com")
    code = await latest_code(db, "email_verification", "ada@example.com")
    await db.execute(
        "UPDATE outbox_message SET failed_at = created_at, last_error = 'SMTPConnectError'"
        " WHERE recipient = 'bob@example.com'"
    )
    assert await rotor_outbox(monkeypatch, database_url) == 0
    out = capsys.readouterr().out
    assert "--- pending email_verification" in out and "to: ada@example.com" in out
    assert code in out  # the text, code included: how a developer without mail reads it
    assert "--- failed email_verification" in out and "last error: SMTPConnectError" in out
    assert out.rstrip().endswith("pending: 1, failed: 1")


async def test_retry_failed_queues_them_again(
    client: Client,
    db: asyncpg.Connection,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await register(client)
    await db.execute("UPDATE outbox_message SET failed_at = created_at, last_error = 'x'")
    assert await rotor_outbox(monkeypatch, database_url, "--retry-failed") == 0
    assert "1 failed message(s) queued again" in capsys.readouterr().out
    row = await db.fetchrow("SELECT * FROM outbox_message")
    assert row["failed_at"] is None and row["give_up_at"] > row["due_at"]


def test_help_names_the_variables(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["outbox", "--help"])
    out = capsys.readouterr().out
    assert "--retry-failed" in out and "AUTH_MAIL_RETRY_FOR" in out and "DATABASE_URL" in out
