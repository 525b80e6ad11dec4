"""The support console over HTTP: sign-in, session cookie and its ends, CSRF, search, the user
page and its actions, roles, audit events naming the staff member, HTML errors."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from console_support import STAFF_PASSWORD, add_staff, csrf_of
from helpers import PASSWORD, Client, login, refresh, register
from mail_support import latest_code

CSP = "Content-Security-Policy"


@pytest.fixture
async def console(make_client: Any) -> Client:
    # Secure off: the test client's cookie jar does not send Secure cookies over plain HTTP.
    client: Client = await make_client(cookie_secure=False)
    return client


async def _sign_in(client: Client, email: str, password: str = STAFF_PASSWORD) -> Any:
    page = await client.get("/console/login")
    token = csrf_of(await page.text())
    return await client.post(
        "/console/login",
        data={"csrf": token, "email": email, "password": password},
        allow_redirects=False,
    )


def _assert_security_headers(response: Any) -> None:
    assert "unsafe-inline" not in response.headers[CSP]
    assert "default-src 'none'" in response.headers[CSP]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_with_no_staff_the_console_only_says_how_to_create_one(console: Client) -> None:
    for path in ["/console/", "/console/login"]:
        response = await console.get(path)
        html = await response.text()
        assert response.status == 200 and "rotor staff add" in html
        assert "<form" not in html
        _assert_security_headers(response)
    response = await console.get("/console", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/"


async def test_sign_in_sets_a_strict_httponly_console_cookie(
    make_client: Any, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    client = await make_client()  # Secure on, as in production
    page = await client.get("/console/login")
    _assert_security_headers(page)
    token = csrf_of(await page.text())
    response = await client.post(
        "/console/login",
        data={"csrf": token, "email": "sam@support.test", "password": STAFF_PASSWORD},
        headers={"Cookie": f"rotor_console_signin={page.cookies['rotor_console_signin'].value}"},
        allow_redirects=False,
    )
    assert response.status == 303 and response.headers["Location"] == "/console/users"
    cookie = response.cookies["rotor_console"]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/console"
    stored = await db.fetchval("SELECT token_hash FROM console_session")
    assert cookie.value.encode() not in stored and len(stored) == 32


async def test_wrong_password_and_missing_csrf_are_refused(
    console: Client, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    response = await _sign_in(console, "sam@support.test", "wrong password!")
    assert response.status == 401 and "incorrect" in await response.text()
    response = await _sign_in(console, "nobody@support.test")
    assert response.status == 401
    response = await console.post(
        "/console/login",
        data={"email": "sam@support.test", "password": STAFF_PASSWORD},
        allow_redirects=False,
    )
    assert response.status == 403 and response.content_type == "text/html"
    assert "rotor_console" not in response.cookies


async def test_sign_in_is_throttled_like_login(console: Client, db: asyncpg.Connection) -> None:
    await add_staff(db, "sam@support.test", "support")
    for _ in range(5):  # login_max_failures in the test settings
        assert (await _sign_in(console, "sam@support.test", "wrong password!")).status == 401
    response = await _sign_in(console, "sam@support.test")
    assert response.status == 429 and int(response.headers["Retry-After"]) > 0
    # Its counters are its own: the users' login is not throttled by it.
    kinds = {row["kind"] for row in await db.fetch("SELECT kind FROM login_failure")}
    assert kinds == {"console_account", "console_ip"}


async def test_search_by_prefix_is_case_insensitive_and_paginated(
    console: Client, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    for n in range(30):
        await register(console, f"Ada{n:02}@Example.com")
    await register(console, "bob@example.com")
    await _sign_in(console, "sam@support.test")
    response = await console.get("/console/users", params={"q": "ADA"})
    html = await response.text()
    assert response.status == 200
    assert html.count('href="/console/users/') == 25 and "bob@" not in html
    next_link = re.search(r'rel="next" href="([^"]+)"', html)
    assert next_link is not None
    second = await (await console.get(next_link.group(1).replace("&amp;", "&"))).text()
    assert second.count('href="/console/users/') == 5 and "Ada29@Example.com" in second
    assert 'rel="next"' not in second
    escaped = await (await console.get("/console/users", params={"q": "<b>x"})).text()
    assert "<b>x" not in escaped and "&lt;b&gt;x" in escaped


async def test_support_revokes_one_session_and_its_refresh_then_fails(
    console: Client, db: asyncpg.Connection
) -> None:
    staff_id = await add_staff(db, "sam@support.test", "support")
    user = await register(console)
    phone = await login(console, device_name="Ada's phone", platform="ios")
    laptop = await login(console, device_name="Ada's laptop", platform="web")
    await _sign_in(console, "sam@support.test")
    page = await console.get(f"/console/users/{user['id']}")
    html = await page.text()
    assert "Ada&#39;s phone" in html and "Ada&#39;s laptop" in html and "ios" in html
    response = await console.post(
        f"/console/users/{user['id']}/sessions/{phone['session_id']}/revoke",
        data={"csrf": csrf_of(html)},
        allow_redirects=False,
    )
    assert response.status == 303
    assert (await refresh(console, phone["refresh_token"])).status == 401
    assert (await refresh(console, laptop["refresh_token"])).status == 200
    event = await db.fetchrow(
        "SELECT kind, reason, staff_id, session_id FROM auth_event WHERE staff_id IS NOT NULL"
    )
    assert dict(event) == {
        "kind": "session_revoked",
        "reason": "staff",
        "staff_id": staff_id,
        "session_id": __import__("uuid").UUID(phone["session_id"]),
    }
    after = await (await console.get(f"/console/users/{user['id']}?done=session_revoked")).text()
    assert "Ada&#39;s phone" not in after and "sam@support.test" in after


async def test_only_an_admin_may_disable(console: Client, db: asyncpg.Connection) -> None:
    await add_staff(db, "sam@support.test", "support")
    await add_staff(db, "ann@support.test", "admin")
    user = await register(console)
    await _sign_in(console, "sam@support.test")
    html = await (await console.get(f"/console/users/{user['id']}")).text()
    response = await console.post(
        f"/console/users/{user['id']}/disable", data={"csrf": csrf_of(html)}
    )
    assert response.status == 403 and "Only an admin" in await response.text()
    _assert_security_headers(response)
    console.session.cookie_jar.clear()
    await _sign_in(console, "ann@support.test")
    html = await (await console.get(f"/console/users/{user['id']}")).text()
    response = await console.post(
        f"/console/users/{user['id']}/disable", data={"csrf": csrf_of(html)}
    )
    assert response.status == 200 and "The account is disabled" in await response.text()
    login_response = await console.post(
        "/v1/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login_response.status == 403
    kinds = [
        r["kind"] for r in await db.fetch("SELECT kind FROM auth_event WHERE staff_id IS NOT NULL")
    ]
    assert kinds == ["staff_disabled"]


async def test_a_form_token_of_another_session_is_refused(
    console: Client, make_client: Any, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    user = await register(console)
    await _sign_in(console, "sam@support.test")
    other = await make_client(cookie_secure=False)
    await _sign_in(other, "sam@support.test")
    foreign = csrf_of(await (await other.get(f"/console/users/{user['id']}")).text())
    response = await console.post(
        f"/console/users/{user['id']}/sessions/revoke", data={"csrf": foreign}
    )
    assert response.status == 403
    response = await console.post(
        f"/console/users/{user['id']}/sessions/revoke",
        data={"csrf": csrf_of(await (await console.get(f"/console/users/{user['id']}")).text())},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status == 403


async def test_console_session_ends_after_30_minutes_idle_and_12_hours_in_all(
    console: Client, db: asyncpg.Connection, clock: Any
) -> None:
    await add_staff(db, "sam@support.test", "support")
    await _sign_in(console, "sam@support.test")
    clock.advance(29 * 60)
    assert (await console.get("/console/users", allow_redirects=False)).status == 200
    clock.advance(31 * 60)
    response = await console.get("/console/users", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/console/login"
    await _sign_in(console, "sam@support.test")
    for _ in range(12 * 3):  # used every 20 minutes: never idle, yet over after 12 hours
        clock.advance(20 * 60)
        status = (await console.get("/console/users", allow_redirects=False)).status
    assert status == 303


async def test_unknown_pages_and_ids_are_html_errors_never_500(
    console: Client, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    await _sign_in(console, "sam@support.test")
    for method, path, status in [
        ("GET", "/console/users/not-a-uuid", 404),
        ("GET", "/console/users/00000000-0000-0000-0000-000000000000", 404),
        ("GET", "/console/nothing", 404),
        ("DELETE", "/console/users", 405),
        ("GET", "/console/users?q=" + "%00" * 10, 200),
        ("GET", "/console/users?q=a&after=%FF", 200),
    ]:
        response = await console.request(method, path, allow_redirects=False)
        assert response.status == status, (method, path, await response.text())
        assert response.content_type == "text/html"
        _assert_security_headers(response)


async def test_support_sends_a_password_reset_that_the_user_can_use(
    console: Client, db: asyncpg.Connection
) -> None:
    staff_id = await add_staff(db, "sam@support.test", "support")
    user = await register(console)
    await _sign_in(console, "sam@support.test")
    html = await (await console.get(f"/console/users/{user['id']}")).text()
    assert "Send password reset" in html
    response = await console.post(
        f"/console/users/{user['id']}/password-reset", data={"csrf": csrf_of(html)}
    )
    assert response.status == 200 and "password reset message" in await response.text()
    # The message and the audit event naming the staff member, committed together.
    code = await latest_code(db, "password_reset", "ada@example.com")
    event = await db.fetchrow("SELECT kind, staff_id FROM auth_event WHERE staff_id IS NOT NULL")
    assert dict(event) == {"kind": "staff_password_reset_sent", "staff_id": staff_id}
    reset = await console.post(
        "/v1/password/reset",
        json={"email": "ada@example.com", "code": code, "new_password": "a brand new secret"},
    )
    assert reset.status == 204
    logged_in = await console.post(
        "/v1/login", json={"email": "ada@example.com", "password": "a brand new secret"}
    )
    assert logged_in.status == 200


async def test_the_user_page_lists_linked_identities(
    console: Client, db: asyncpg.Connection
) -> None:
    await add_staff(db, "sam@support.test", "support")
    user = await register(console)
    await db.execute(
        "INSERT INTO identity (provider, subject, user_id, email, created_at, last_used_at)"
        " VALUES ('apple', '001234.abcd', $1, 'ada@privaterelay.example', now(), now())",
        __import__("uuid").UUID(user["id"]),
    )
    await _sign_in(console, "sam@support.test")
    html = await (await console.get(f"/console/users/{user['id']}")).text()
    assert "Identities" in html and "001234.abcd" in html and "apple" in html
