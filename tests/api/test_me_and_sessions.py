"""GET /v1/me, GET /v1/sessions, DELETE /v1/sessions/{id}."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from helpers import Client, bearer, error_of, login, refresh, signed_in
from tests_support import forge_access_token


async def test_me_returns_user_and_session(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.get("/v1/me", headers=bearer(tokens))
    assert response.status == 200
    assert await response.json() == {"user": tokens["user"], "session_id": tokens["session_id"]}


async def test_me_rejects_bad_tokens(client: Client, clock: Any) -> None:
    tokens = await signed_in(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    bad = [
        None,
        "Bearer",
        "Bearer garbage",
        "Token " + tokens["access_token"],
        "Bearer " + jwt.encode(claims, "", algorithm="none"),
        "Bearer " + forge_access_token(claims, typ="JWT"),
        "Bearer " + forge_access_token({**claims, "iss": "evil"}),
        "Bearer " + forge_access_token({**claims, "aud": "other"}),
        "Bearer " + forge_access_token(claims, secret=b"another-secret-of-at-least-32-bytes!!"),
        "Bearer " + forge_access_token({k: v for k, v in claims.items() if k != "jti"}),
        "Bearer " + forge_access_token({**claims, "sub": str(uuid.uuid4())}),
        "Bearer " + forge_access_token({**claims, "sid": "not-a-uuid"}),
        "Bearer " + "x" * 10_000,
    ]
    for header in bad:
        headers = {} if header is None else {"Authorization": header}
        response = await client.get("/v1/me", headers=headers)
        assert response.status == 401, (header or "")[:60]
        assert await error_of(response) == "invalid_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_expiry_allows_30_seconds_of_leeway(client: Client, clock: Any) -> None:
    tokens = await signed_in(client)
    clock.advance(900 + 29)
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 200
    clock.advance(2)
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401


async def test_sessions_lists_live_sessions_most_recent_first(client: Client, clock: Any) -> None:
    phone = await signed_in(client, device_name="phone", platform="android")
    clock.advance(5)
    laptop = await login(client, device_name="laptop", headers={"User-Agent": "ignored"})
    clock.advance(5)
    ended = await login(client)
    await client.post("/v1/logout", headers=bearer(ended))
    clock.advance(5)
    await client.post(
        "/v1/refresh",
        json={"refresh_token": phone["refresh_token"]},
        headers={"User-Agent": "RotorApp/2.0"},
    )
    response = await client.get("/v1/sessions", headers=bearer(laptop))
    assert response.status == 200
    sessions = (await response.json())["sessions"]
    assert [s["id"] for s in sessions] == [phone["session_id"], laptop["session_id"]]
    first = sessions[0]
    assert set(first) == {
        "id", "device_name", "platform", "user_agent", "ip",
        "created_at", "last_used_at", "expires_at", "current",
    }  # fmt: skip
    assert first["device_name"] == "phone" and first["platform"] == "android"
    assert first["user_agent"] == "RotorApp/2.0" and first["ip"] == "127.0.0.1"
    assert first["created_at"] == "2026-11-27T12:00:00Z"
    assert first["last_used_at"] == "2026-11-27T12:00:15Z"
    assert first["expires_at"] == "2026-11-27T13:00:15Z"  # the idle end comes before the absolute
    assert [s["current"] for s in sessions] == [False, True]


async def test_using_an_access_token_does_not_touch_last_used_at(
    client: Client, clock: Any
) -> None:
    tokens = await signed_in(client)
    clock.advance(60)
    await client.get("/v1/me", headers=bearer(tokens))
    sessions = (await (await client.get("/v1/sessions", headers=bearer(tokens))).json())["sessions"]
    assert sessions[0]["last_used_at"] == "2026-11-27T12:00:00Z"


async def test_delete_own_session(client: Client) -> None:
    phone = await signed_in(client)
    laptop = await login(client)
    response = await client.delete(f"/v1/sessions/{laptop['session_id']}", headers=bearer(phone))
    assert response.status == 204
    assert (await client.get("/v1/me", headers=bearer(laptop))).status == 401
    assert (await refresh(client, laptop["refresh_token"])).status == 401
    # Ended now: deleting it again is 404, like any session not among the live ones.
    response = await client.delete(f"/v1/sessions/{laptop['session_id']}", headers=bearer(phone))
    assert response.status == 404


async def test_delete_someone_elses_or_unknown_session_is_404(client: Client) -> None:
    ada = await signed_in(client)
    bob = await signed_in(client, "bob@example.com")
    for target in [bob["session_id"], str(uuid.uuid4()), "not-a-uuid", "%00"]:
        response = await client.delete(f"/v1/sessions/{target}", headers=bearer(ada))
        assert response.status == 404, target
        assert await error_of(response) == "not_found"
    assert (await client.get("/v1/me", headers=bearer(bob))).status == 200


async def test_protected_routes_need_a_token(client: Client) -> None:
    for method, path in [
        ("GET", "/v1/me"),
        ("GET", "/v1/sessions"),
        ("DELETE", f"/v1/sessions/{uuid.uuid4()}"),
        ("POST", "/v1/password"),
        ("DELETE", "/v1/me"),
    ]:
        response = await client.request(method, path)
        assert response.status == 401, path
        assert await error_of(response) == "invalid_token"
