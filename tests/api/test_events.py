"""The audit trail: what each change records, GET /v1/events, the admin's view, pruning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from helpers import PASSWORD, Client, bearer, error_of, login, refresh, register, signed_in
from sqlalchemy.ext.asyncio import create_async_engine

from service.db import events
from service.db.engine import async_url

ADMIN_KEY = "admin-key-that-is-long-enough"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
UA = {"User-Agent": "RotorTest/1.0"}


async def events_of(client: Client, tokens: dict[str, Any], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v1/events{query}", headers=bearer(tokens))
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def kinds(client: Client, tokens: dict[str, Any]) -> list[tuple[str, str | None]]:
    body = await events_of(client, tokens, "?limit=100")
    return [(event["kind"], event["reason"]) for event in body["events"]]


async def test_login_is_recorded_with_device_and_time(client: Client, clock: Any) -> None:
    await register(client)
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}, headers=UA
    )
    tokens = await response.json()
    body = await events_of(client, tokens)
    assert body["next_cursor"] is None
    [event] = body["events"]
    assert event["kind"] == "login"
    assert event["reason"] is None
    assert event["session_id"] == tokens["session_id"]
    assert event["user_agent"] == "RotorTest/1.0"
    assert event["ip"] == "127.0.0.1"
    assert event["created_at"] == "2026-11-27T12:00:00Z"  # the injected clock
    assert set(event) == {"id", "kind", "reason", "session_id", "ip", "user_agent", "created_at"}
    uuid.UUID(event["id"])


async def test_failed_logins_are_recorded_for_known_and_unknown_emails(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    user = await register(client)
    for email in ["ada@example.com", "nobody@example.com"]:
        response = await client.post("/v1/login", json={"email": email, "password": "wrong-pass"})
        assert response.status == 401
    rows = await db.fetch(
        "SELECT user_id, kind, reason FROM auth_event ORDER BY user_id NULLS LAST"
    )
    assert [(row["user_id"], row["kind"], row["reason"]) for row in rows] == [
        (uuid.UUID(user["id"]), "login_failed", "invalid_credentials"),
        (None, "login_failed", "invalid_credentials"),
    ]
    # The unknown email is stored nowhere (it may be a mistyped password).
    dump = repr([dict(row) for row in await db.fetch("SELECT * FROM auth_event")])
    assert "nobody" not in dump
    assert "wrong-pass" not in dump
    clock.advance(1)  # events of one instant have no defined order
    tokens = await login(client)
    assert await kinds(client, tokens) == [
        ("login", None),
        ("login_failed", "invalid_credentials"),
    ]


async def test_throttled_logins_write_no_event(make_client: Any, db: asyncpg.Connection) -> None:
    client = await make_client(login_max_failures=2)
    await register(client)
    for _ in range(3):
        await client.post("/v1/login", json={"email": "ada@example.com", "password": "wrong-pw"})
    assert await db.fetchval("SELECT count(*) FROM auth_event") == 2


async def test_disabled_account_login_is_recorded(make_client: Any, db: asyncpg.Connection) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    user = await register(client)
    assert (await client.post(f"/v1/admin/users/{user['id']}/disable", headers=ADMIN)).status == 204
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 403
    reasons = await db.fetch("SELECT kind, reason FROM auth_event ORDER BY kind")
    assert [(r["kind"], r["reason"]) for r in reasons] == [
        ("admin_disabled", None),
        ("login_failed", "account_disabled"),
    ]


async def test_refresh_reuse_is_recorded_although_the_request_fails(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    tokens = await signed_in(client)
    await refresh(client, tokens["refresh_token"])
    clock.advance(60)
    response = await client.post(
        "/v1/refresh", json={"refresh_token": tokens["refresh_token"]}, headers=UA
    )
    assert response.status == 401
    assert await error_of(response) == "token_reused"
    rows = await db.fetch(
        "SELECT kind, reason, session_id, user_agent FROM auth_event WHERE kind <> 'login' "
        "ORDER BY kind"
    )
    assert [(r["kind"], r["reason"]) for r in rows] == [
        ("refresh_reuse_detected", None),
        ("session_revoked", "token_reused"),
    ]
    assert {str(r["session_id"]) for r in rows} == {tokens["session_id"]}
    assert {r["user_agent"] for r in rows} == {"RotorTest/1.0"}
    # Rotations themselves are not audit events (metrics count them).
    assert await db.fetchval("SELECT count(*) FROM auth_event") == 3


async def test_logouts_and_session_deletes_record_each_revoked_session(
    client: Client, db: asyncpg.Connection, clock: Any
) -> None:
    first = await signed_in(client)
    others = [await login(client) for _ in range(3)]
    clock.advance(1)
    await client.delete(f"/v1/sessions/{others[0]['session_id']}", headers=bearer(first))
    clock.advance(1)
    await client.post("/v1/logout", json={"scope": "others"}, headers=bearer(first))
    clock.advance(1)
    await client.post("/v1/logout", headers=bearer(first))
    clock.advance(1)
    await client.post("/v1/logout", headers=bearer(first))  # already ended: no new event
    rows = await db.fetch(
        "SELECT reason, session_id FROM auth_event WHERE kind = 'session_revoked' "
        "ORDER BY created_at"
    )
    revoked = [(r["reason"], str(r["session_id"])) for r in rows]
    assert revoked[0] == ("user", others[0]["session_id"])
    # One instant, one event per session ended by "others".
    assert sorted(revoked[1:3]) == sorted(("logout_others", o["session_id"]) for o in others[1:])
    assert revoked[3:] == [("logout", first["session_id"])]


async def test_logout_with_refresh_token_is_recorded(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    response = await client.post("/v1/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 204
    row = await db.fetchrow(
        "SELECT reason, session_id FROM auth_event WHERE kind='session_revoked'"
    )
    assert row["reason"] == "logout"
    assert str(row["session_id"]) == tokens["session_id"]


async def test_password_change_records_change_and_revocations(client: Client, clock: Any) -> None:
    current = await signed_in(client)
    other = await login(client)
    clock.advance(5)
    response = await client.post(
        "/v1/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=bearer(current),
    )
    assert response.status == 204
    body = await events_of(client, current)
    newest = {(e["kind"], e["reason"], e["session_id"]) for e in body["events"][:2]}
    assert newest == {
        ("password_changed", None, current["session_id"]),
        ("session_revoked", "password_changed", other["session_id"]),
    }


async def test_admin_actions_are_recorded_and_readable_by_admin(
    make_client: Any, clock: Any
) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    tokens = await signed_in(client)
    user_id = tokens["user"]["id"]
    for action in ["sessions", "disable", "enable"]:
        clock.advance(1)
        if action == "sessions":
            response = await client.delete(f"/v1/admin/users/{user_id}/sessions", headers=ADMIN)
        else:
            response = await client.post(f"/v1/admin/users/{user_id}/{action}", headers=ADMIN)
        assert response.status == 204
    response = await client.get(f"/v1/admin/users/{user_id}/events", headers=ADMIN)
    assert response.status == 200
    body = await response.json()
    listed = [(e["kind"], e["reason"]) for e in body["events"]]
    assert listed[:2] == [("admin_enabled", None), ("admin_disabled", None)]
    assert set(listed[2:4]) == {("admin_sessions_revoked", None), ("session_revoked", "admin")}
    assert listed[4:] == [("login", None)]


async def test_admin_events_errors(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    missing = f"/v1/admin/users/{uuid.uuid4()}/events"
    assert (await client.get(missing, headers=ADMIN)).status == 404
    response = await client.get("/v1/admin/users/not-a-uuid/events", headers=ADMIN)
    assert response.status == 404
    assert await error_of(response) == "not_found"
    response = await client.get(missing, headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
    assert await error_of(response) == "invalid_token"
    user = await register(client)
    response = await client.get(f"/v1/admin/users/{user['id']}/events?limit=0", headers=ADMIN)
    assert response.status == 422
    no_admin = await make_client()
    assert (await no_admin.get(missing, headers=ADMIN)).status == 404


async def test_account_deletion_keeps_its_events_detached(
    client: Client, db: asyncpg.Connection
) -> None:
    tokens = await signed_in(client)
    other = await signed_in(client, "bob@example.com")
    response = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status == 204
    rows = await db.fetch("SELECT user_id, kind, session_id FROM auth_event ORDER BY kind")
    ada = [r for r in rows if str(r["session_id"]) == tokens["session_id"]]
    assert [(r["kind"], r["user_id"]) for r in ada] == [("account_deleted", None), ("login", None)]
    # Another user's events are untouched.
    assert await kinds(client, other) == [("login", None)]


async def test_events_page_newest_first_with_cursor(client: Client, clock: Any) -> None:
    await register(client)
    sessions = []
    for _ in range(5):
        clock.advance(1)
        sessions.append(await login(client))
    tokens = sessions[-1]
    first = await events_of(client, tokens, "?limit=2")
    assert [e["session_id"] for e in first["events"]] == [
        sessions[4]["session_id"],
        sessions[3]["session_id"],
    ]
    assert first["next_cursor"]
    second = await events_of(client, tokens, f"?limit=2&cursor={first['next_cursor']}")
    third = await events_of(client, tokens, f"?limit=2&cursor={second['next_cursor']}")
    assert [e["session_id"] for e in second["events"] + third["events"]] == [
        s["session_id"] for s in reversed(sessions[:3])
    ]
    assert third["next_cursor"] is None
    default = await events_of(client, tokens)
    assert len(default["events"]) == 5
    assert default["next_cursor"] is None


async def test_events_with_equal_timestamps_page_without_loss(client: Client) -> None:
    await register(client)
    sessions = {(await login(client))["session_id"] for _ in range(5)}  # one instant
    tokens = await login(client)
    sessions.add(tokens["session_id"])
    seen: list[str] = []
    cursor = ""
    while True:
        page = await events_of(client, tokens, f"?limit=4{cursor}")
        seen += [e["session_id"] for e in page["events"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(sessions)


async def test_bad_paging_parameters_are_422(client: Client) -> None:
    tokens = await signed_in(client)
    for query, field in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=abc", "limit"),
        ("?limit=-1", "limit"),
        ("?limit=%C2%B2", "limit"),
        ("?limit=", "limit"),
        ("?cursor=", "cursor"),
        ("?cursor=not-base64!", "cursor"),
        ("?cursor=W10", "cursor"),  # base64 of "[]"
        ("?cursor=" + "A" * 500, "cursor"),
        ("?cursor=%E2%82%AC", "cursor"),
    ]:
        response = await client.get(f"/v1/events{query}", headers=bearer(tokens))
        assert response.status == 422, query
        body = await response.json()
        assert body["error"] == "validation_error", query
        assert field in body["fields"], query


async def test_events_need_a_valid_access_token(client: Client) -> None:
    response = await client.get("/v1/events")
    assert response.status == 401
    assert await error_of(response) == "invalid_token"
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_users_see_only_their_own_events(client: Client) -> None:
    ada = await signed_in(client)
    bob = await signed_in(client, "bob@example.com")
    assert [e["session_id"] for e in (await events_of(client, ada))["events"]] == [
        ada["session_id"]
    ]
    assert [e["session_id"] for e in (await events_of(client, bob))["events"]] == [
        bob["session_id"]
    ]


async def test_prune_deletes_old_events_in_bounded_batches(
    database_url: str, db: asyncpg.Connection
) -> None:
    now = datetime(2026, 11, 27, tzinfo=UTC)
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as conn:
            for age_days in [100, 95, 91, 89, 1]:
                await events.insert_auth_events(
                    conn, kind="login", now=now - timedelta(days=age_days), user_id=uuid.uuid4()
                )
        cutoff = now - timedelta(days=90)
        deleted = []
        while True:
            async with engine.begin() as conn:
                count = await events.prune_auth_events(conn, cutoff, batch_size=2)
            deleted.append(count)
            if count < 2:
                break
    finally:
        await engine.dispose()
    assert deleted == [2, 1]
    left = await db.fetch("SELECT created_at FROM auth_event ORDER BY created_at")
    assert [now - row["created_at"] for row in left] == [timedelta(days=89), timedelta(days=1)]
