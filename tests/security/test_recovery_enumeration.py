"""forgot and resend do the same work for a known, an unknown, a disabled and an
already-verified address: the same SQL statements in the same order (counted on the engine),
the same code hashing and the same rendering; only the outcome differs, and nobody sees it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import pytest
from helpers import Client, register
from mail_support import latest_code
from sqlalchemy import event

from service.domain import codes
from service.domain.messages import MessageRenderer
from service.web.appkeys import ENGINE

CASES = ("known", "unknown", "disabled", "verified")


async def _prepare(client: Client, db: asyncpg.Connection) -> None:
    await register(client, "known@example.com")
    disabled = await register(client, "disabled@example.com")
    await db.execute('UPDATE "user" SET disabled_at = now() WHERE id = $1', disabled["id"])
    await register(client, "verified@example.com")
    code = await latest_code(db, "email_verification", "verified@example.com")
    response = await client.post(
        "/v1/email/verify", json={"email": "verified@example.com", "code": code}
    )
    assert response.status == 200


@pytest.mark.parametrize("path", ["/v1/password/forgot", "/v1/email/verify/resend"])
async def test_every_address_runs_the_same_statements_and_hashing(
    client: Client, db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    await _prepare(client, db)
    statements: list[str] = []
    work: Counter[str] = Counter()

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    real_digest, real_render = codes.digest, MessageRenderer.render

    def digest(*args: Any) -> bytes:
        work["digest"] += 1
        return real_digest(*args)

    def render(self: MessageRenderer, *args: Any, **kwargs: Any) -> Any:
        work["render"] += 1
        return real_render(self, *args, **kwargs)

    monkeypatch.setattr(codes, "digest", digest)
    monkeypatch.setattr(MessageRenderer, "render", render)
    engine = client.app[ENGINE].sync_engine
    event.listen(engine, "before_cursor_execute", on_execute)
    seen: dict[str, tuple[list[str], Counter[str], int, Any, int]] = {}
    messages_before = await db.fetchval("SELECT count(*) FROM outbox_message")
    try:
        for case in CASES:
            statements.clear()
            work.clear()
            response = await client.post(path, json={"email": f"{case}@example.com"})
            body = await response.json()
            total = await db.fetchval("SELECT count(*) FROM outbox_message")
            sent = total - messages_before
            seen[case] = (list(statements), Counter(work), response.status, body, sent)
            messages_before = total
    finally:
        event.remove(engine, "before_cursor_execute", on_execute)
    known_statements, known_work, *_ = seen["known"]
    assert len(known_statements) >= 5  # counters, user, codes, outbox: a real transaction
    assert known_work == Counter(digest=1, render=1)
    for case in CASES:
        case_statements, case_work, case_status, case_body, _ = seen[case]
        assert case_statements == known_statements, case
        assert case_work == known_work, case
        assert (case_status, case_body) == (202, {}), case
    # Only the known (and, for forgot, the verified) address got a message.
    sent = {case: seen[case][4] for case in CASES}
    expected_verified = 1 if path == "/v1/password/forgot" else 0
    assert sent == {"known": 1, "unknown": 0, "disabled": 0, "verified": expected_verified}
