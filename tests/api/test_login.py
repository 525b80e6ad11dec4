"""POST /v1/login: credentials, sessions, throttling, disabled accounts, session cap."""

from __future__ import annotations

from typing import Any

import asyncpg
import jwt
from helpers import PASSWORD, Client, bearer, error_of, login, register, signed_in

from service.web.appkeys import HASHER


async def test_login_returns_the_token_response(client: Client, db: asyncpg.Connection) -> None:
    user = await register(client)
    tokens = await login(client, device_name="Ada's phone", platform="ios")
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "session_id",
        "user",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900 and tokens["refresh_expires_in"] == 3600
    assert tokens["user"] == user
    row = await db.fetchrow("SELECT device_name, platform, ip::text AS ip FROM session")
    assert row["device_name"] == "Ada's phone" and row["platform"] == "ios"
    assert row["ip"] == "127.0.0.1/32"


async def test_access_token_claims_and_header(client: Client) -> None:
    tokens = await signed_in(client)
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["typ"] == "at+jwt" and header["alg"] == "HS256" and header["kid"]
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert set(claims) == {"iss", "aud", "sub", "sid", "iat", "exp", "jti"}
    assert claims["sub"] == tokens["user"]["id"] and claims["sid"] == tokens["session_id"]
    assert claims["iss"] == "rotor" and claims["aud"] == "rotor"
    assert claims["exp"] - claims["iat"] == 900


async def test_unknown_email_and_wrong_password_look_the_same(client: Client) -> None:
    await register(client)
    answers = []
    for email, password in [("ada@example.com", "wrong password"), ("nobody@x.io", PASSWORD)]:
        response = await client.post("/v1/login", json={"email": email, "password": password})
        answers.append((response.status, await response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401 and answers[0][1]["error"] == "invalid_credentials"


async def test_unknown_email_still_runs_bcrypt(client: Client, monkeypatch: Any) -> None:
    calls: list[str] = []
    hasher = client.app[HASHER]
    original = hasher.verify

    async def counting(password: str, stored: str) -> bool:
        calls.append(stored.split("$")[0])
        return await original(password, stored)

    monkeypatch.setattr(hasher, "verify", counting)
    response = await client.post("/v1/login", json={"email": "nobody@x.io", "password": PASSWORD})
    assert response.status == 401
    assert calls == ["bcrypt-hmac-sha256"]  # the same work as checking a real hash


async def test_validation_errors(client: Client) -> None:
    for body, field in [
        ({"email": "a@b.io"}, "password"),
        ({"email": "a@b.io", "password": PASSWORD, "transport": "smoke"}, "transport"),
        ({"email": "a@b.io", "password": PASSWORD, "device_name": "x" * 201}, "device_name"),
        ({"email": "a@b.io", "password": PASSWORD, "platform": 3}, "platform"),
    ]:
        response = await client.post("/v1/login", json=body)
        assert response.status == 422, body
        assert list((await response.json())["fields"]) == [field]


async def test_failed_logins_are_throttled_per_account(client: Client, clock: Any) -> None:
    await register(client)
    for _ in range(5):  # AUTH_LOGIN_MAX_FAILURES=5 in the test settings
        response = await client.post(
            "/v1/login", json={"email": "ada@example.com", "password": "wrong password"}
        )
        assert response.status == 401
    clock.advance(100)
    response = await client.post(
        "/v1/login", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    assert response.status == 429 and await error_of(response) == "rate_limited"
    assert response.headers["Retry-After"] == "500"  # the 600 s window opened 100 s ago
    clock.advance(500)
    assert (await login(client))["user"]["email"] == "ada@example.com"


async def test_throttled_attempts_do_not_check_or_count(
    client: Client, clock: Any, db: asyncpg.Connection
) -> None:
    await register(client)
    for _ in range(5):
        await client.post("/v1/login", json={"email": "ada@example.com", "password": "nope-nope"})
    for _ in range(3):
        response = await client.post(
            "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert response.status == 429
    failures = await db.fetchval("SELECT failures FROM login_failure WHERE kind = 'account'")
    assert failures == 5


async def test_unknown_emails_are_throttled_like_real_ones(client: Client) -> None:
    for _ in range(5):
        await client.post("/v1/login", json={"email": "ghost@x.io", "password": "nope-nope"})
    response = await client.post("/v1/login", json={"email": "ghost@x.io", "password": PASSWORD})
    assert response.status == 429  # no enumeration through the throttle either


async def test_failures_are_throttled_per_ip_at_ten_times_the_limit(client: Client) -> None:
    await register(client)
    for index in range(50):  # 10 x 5, spread over accounts so no account hits its own limit
        await client.post("/v1/login", json={"email": f"u{index}@x.io", "password": "nope-nope"})
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 429 and "Retry-After" in response.headers


async def test_successful_login_resets_the_account_counter(client: Client) -> None:
    await register(client)
    for _ in range(4):
        await client.post("/v1/login", json={"email": "ada@example.com", "password": "nope-nope"})
    await login(client)
    for _ in range(4):
        response = await client.post(
            "/v1/login", json={"email": "ada@example.com", "password": "nope-nope"}
        )
        assert response.status == 401


async def test_disabled_account_answers_403_only_after_a_correct_password(
    client: Client, db: asyncpg.Connection
) -> None:
    await register(client)
    await db.execute('UPDATE "user" SET disabled_at = now()')
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": "nope-nope"}
    )
    assert response.status == 401 and await error_of(response) == "invalid_credentials"
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 403 and await error_of(response) == "account_disabled"


async def test_login_beyond_the_cap_revokes_the_least_recently_used_session(
    make_client: Any, clock: Any
) -> None:
    client = await make_client(max_sessions=3)
    await register(client)
    sessions = []
    for _ in range(3):
        sessions.append(await login(client))
        clock.advance(10)
    # Using the oldest session makes the second one the least recently used.
    refreshed = await (
        await client.post("/v1/refresh", json={"refresh_token": sessions[0]["refresh_token"]})
    ).json()
    clock.advance(10)
    newest = await login(client)
    listed = await (await client.get("/v1/sessions", headers=bearer(newest))).json()
    ids = {session["id"] for session in listed["sessions"]}
    assert ids == {refreshed["session_id"], sessions[2]["session_id"], newest["session_id"]}
    assert (await client.get("/v1/me", headers=bearer(sessions[1]))).status == 401


async def test_racing_logins_never_exceed_the_cap(make_client: Any, db: asyncpg.Connection) -> None:
    import asyncio

    client = await make_client(max_sessions=2)
    await register(client)
    await asyncio.gather(*(login(client) for _ in range(8)))
    live = await db.fetchval("SELECT count(*) FROM session WHERE revoked_at IS NULL")
    assert live == 2
