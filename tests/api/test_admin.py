"""Admin routes: a bearer admin key; off (404) when no key is configured."""

from __future__ import annotations

import uuid
from typing import Any

from helpers import PASSWORD, Client, bearer, error_of, login, signed_in

ADMIN_KEY = "admin-key-for-the-tests-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_admin_routes_are_off_without_a_key(client: Client) -> None:
    tokens = await signed_in(client)
    path = f"/v1/admin/users/{tokens['user']['id']}/sessions"
    response = await client.get(path, headers=ADMIN)
    assert response.status == 404 and await error_of(response) == "not_found"


async def test_admin_key_is_required(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    tokens = await signed_in(client)
    path = f"/v1/admin/users/{tokens['user']['id']}/sessions"
    for headers in [
        {},
        {"Authorization": "Bearer wrong"},
        bearer(tokens),
        {"Authorization": ADMIN_KEY},
    ]:
        response = await client.get(path, headers=headers)
        assert response.status == 401 and await error_of(response) == "invalid_token"
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_admin_lists_and_revokes_a_users_sessions(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    phone = await signed_in(client, device_name="phone")
    laptop = await login(client)
    bob = await signed_in(client, "bob@example.com")
    user_id = phone["user"]["id"]
    response = await client.get(f"/v1/admin/users/{user_id}/sessions", headers=ADMIN)
    assert response.status == 200
    sessions = (await response.json())["sessions"]
    assert {s["id"] for s in sessions} == {phone["session_id"], laptop["session_id"]}
    assert not any(s["current"] for s in sessions)
    response = await client.delete(f"/v1/admin/users/{user_id}/sessions", headers=ADMIN)
    assert response.status == 204
    assert (await client.get("/v1/me", headers=bearer(phone))).status == 401
    assert (await client.get("/v1/me", headers=bearer(laptop))).status == 401
    assert (await client.get("/v1/me", headers=bearer(bob))).status == 200


async def test_disable_revokes_everything_and_blocks_login_until_enabled(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    tokens = await signed_in(client)
    user_id = tokens["user"]["id"]
    assert (await client.post(f"/v1/admin/users/{user_id}/disable", headers=ADMIN)).status == 204
    assert (await client.get("/v1/me", headers=bearer(tokens))).status == 401
    response = await client.post("/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status == 401
    response = await client.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 403 and await error_of(response) == "account_disabled"
    assert (await client.post(f"/v1/admin/users/{user_id}/enable", headers=ADMIN)).status == 204
    await login(client)


async def test_unknown_users_are_404(make_client: Any) -> None:
    client = await make_client(admin_key=ADMIN_KEY)
    for user_id in [str(uuid.uuid4()), "not-a-uuid"]:
        for method, suffix in [
            ("GET", "sessions"),
            ("DELETE", "sessions"),
            ("POST", "disable"),
            ("POST", "enable"),
        ]:
            response = await client.request(
                method, f"/v1/admin/users/{user_id}/{suffix}", headers=ADMIN
            )
            assert response.status == 404, (method, suffix)
            assert await error_of(response) == "not_found"
