"""Real Chromium (headless) against real `rotor serve` processes: a single-page app on another
origin with the cookie transport, the same app from an unlisted origin, the same app behind a
path prefix, and the support console (with screenshots kept in docs/images)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser import available, chromium, proxy_app, run_flow, serving, spa_app
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from servers import ROOT, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not available(), reason="chromium and chromedriver are not installed"),
]
IMAGES = ROOT / "docs" / "images"
PASSWORD = "correct horse battery staple"
STAFF_PASSWORD = "staff password 123"
NO_COOKIE = "No refresh cookie arrived"


def _expected_flow() -> dict[str, Any]:
    return {
        "register": 201,
        "login": 200,
        "refresh_token_in_body": False,
        "me": 200,
        "refresh": 200,
        "same_session": True,
        "refresh_again": 200,
        "logout": 204,
    }


async def test_spa_on_another_origin_uses_the_cookie_and_an_unlisted_origin_is_blocked(
    serve: Any, tmp_path: Path, db: Any
) -> None:
    spa_port = free_port()
    app_origin = f"http://localhost:{spa_port}"
    rotor = await serve("rotor", AUTH_CORS_ORIGINS=app_origin, AUTH_COOKIE_SECURE="false")
    base = f"http://localhost:{rotor.port}"

    def browse() -> tuple[dict[str, Any], dict[str, Any]]:
        with chromium(tmp_path / "profile") as driver:
            listed = run_flow(driver, f"{app_origin}/", base, "ada@example.com")
            # The same page from an origin that is not listed: 127.0.0.1 instead of localhost.
            unlisted = run_flow(driver, f"http://127.0.0.1:{spa_port}/", base, "bob@example.com")
            return listed, unlisted

    async with serving(spa_app(), spa_port):
        listed, unlisted = await asyncio.to_thread(browse)
    after_logout = listed.pop("after_logout")
    assert listed == _expected_flow()
    # Logout's clearing cookie replaced the browser's: the next refresh sent none.
    assert after_logout[0] == 401 and NO_COOKIE in after_logout[1]
    # The browser refused to hand the answer to the page (a CORS failure is a TypeError).
    assert unlisted == {"error": "TypeError: Failed to fetch"}
    async with (
        rotor.client() as http,
        http.post("/v1/login", json={"email": "bob@example.com", "password": PASSWORD}) as response,
    ):
        # Simple requests still reach the server (that is how CORS works): the register went
        # through, the page just could not read the answer or go on.
        assert response.status in (200, 401)
    rotor.assert_no_unhandled_errors()


async def test_spa_behind_a_path_prefix_with_the_cookie_path_set(
    serve: Any, tmp_path: Path, db: Any
) -> None:
    rotor = await serve("rotor", AUTH_COOKIE_PATH="/auth/v1", AUTH_COOKIE_SECURE="false")
    proxy_port = free_port()
    origin = f"http://localhost:{proxy_port}"

    def browse() -> dict[str, Any]:
        with chromium(tmp_path / "profile") as driver:
            return run_flow(driver, f"{origin}/", f"{origin}/auth", "ada@example.com")

    async with serving(proxy_app(rotor.url), proxy_port):
        result = await asyncio.to_thread(browse)
    after_logout = result.pop("after_logout")
    assert result == _expected_flow()
    assert after_logout[0] == 401 and NO_COOKIE in after_logout[1]
    rotor.assert_no_unhandled_errors()


def _add_staff(database_url: str, email: str, role: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ROTOR_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "service", "staff", "add", email, "--role", role],
        input=STAFF_PASSWORD + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url, "AUTH_BCRYPT_ROUNDS": "4"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert f"added {email}" in completed.stdout


async def _login(http: aiohttp.ClientSession, device: str) -> dict[str, Any]:
    async with http.post(
        "/v1/login",
        json={"email": "ada@example.com", "password": PASSWORD, "device_name": device},
        headers={"User-Agent": f"AdaApp/2.1 ({device})"},
    ) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


async def _refresh_status(http: aiohttp.ClientSession, token: str) -> int:
    async with http.post("/v1/refresh", json={"refresh_token": token}) as response:
        return response.status


def _sign_in(driver: Any, base: str, email: str) -> None:
    driver.get(f"{base}/console/")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(STAFF_PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stack button").click()


def _page_shows(driver: Any, text: str, seconds: float = 15) -> bool:
    """Whether the page the last click leads to shows `text` (a form post's next page may still
    be loading when the click returns)."""
    try:
        WebDriverWait(driver, seconds).until(lambda d: text in d.page_source)
    except TimeoutException:
        return False
    return True


def _csp_violations(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


async def test_support_console_in_a_browser(
    serve: Any, tmp_path: Path, database_url: str, db: Any
) -> None:
    rotor = await serve("rotor", AUTH_COOKIE_SECURE="false")
    base = f"http://localhost:{rotor.port}"
    IMAGES.mkdir(parents=True, exist_ok=True)

    def setup_page() -> list[str]:
        with chromium(tmp_path / "profile-0") as driver:
            driver.get(f"{base}/console/")
            assert "rotor staff add" in driver.page_source
            driver.save_screenshot(str(IMAGES / "console-setup.png"))
            return _csp_violations(driver)

    assert await asyncio.to_thread(setup_page) == []
    await asyncio.to_thread(_add_staff, database_url, "sam@support.example", "support")
    await asyncio.to_thread(_add_staff, database_url, "ann@support.example", "admin")
    async with rotor.client() as http:
        async with http.post(
            "/v1/register", json={"email": "ada@example.com", "password": PASSWORD}
        ) as response:
            assert response.status == 201
        phone = await _login(http, "Ada's phone")
        laptop = await _login(http, "Ada's laptop")

    def support() -> list[str]:
        with chromium(tmp_path / "profile-1") as driver:
            driver.get(f"{base}/console/login")
            driver.save_screenshot(str(IMAGES / "console-sign-in.png"))
            _sign_in(driver, base, "sam@support.example")
            search = driver.find_element(By.ID, "q")
            search.send_keys("ADA")
            driver.find_element(By.CSS_SELECTOR, "form.search button").click()
            driver.save_screenshot(str(IMAGES / "console-search.png"))
            driver.find_element(By.LINK_TEXT, "ada@example.com").click()
            assert "Ada&#39;s phone" in driver.page_source or "Ada's phone" in driver.page_source
            driver.save_screenshot(str(IMAGES / "console-user.png"))
            driver.find_element(By.CSS_SELECTOR, f"#session-{phone['session_id']} button").click()
            assert _page_shows(driver, "The session was revoked")
            driver.save_screenshot(str(IMAGES / "console-session-revoked.png"))
            driver.set_window_size(390, 844)  # a phone
            driver.refresh()
            driver.save_screenshot(str(IMAGES / "console-user-phone.png"))
            driver.set_window_size(1280, 900)
            driver.find_element(By.CSS_SELECTOR, "button.danger").click()
            assert _page_shows(driver, "Only an admin may disable")
            driver.save_screenshot(str(IMAGES / "console-refused.png"))
            return _csp_violations(driver)

    assert await asyncio.to_thread(support) == []
    async with rotor.client() as http:
        assert await _refresh_status(http, phone["refresh_token"]) == 401
        laptop_status = await _refresh_status(http, laptop["refresh_token"])
        assert laptop_status == 200
    assert await db.fetchval('SELECT disabled_at FROM "user"') is None

    def admin() -> list[str]:
        with chromium(tmp_path / "profile-2") as driver:
            _sign_in(driver, base, "ann@support.example")
            driver.get(f"{base}/console/users?q=ada")
            driver.find_element(By.LINK_TEXT, "ada@example.com").click()
            driver.find_element(By.CSS_SELECTOR, "button.danger").click()
            assert _page_shows(driver, "The account is disabled")
            driver.save_screenshot(str(IMAGES / "console-disabled.png"))
            return _csp_violations(driver)

    assert await asyncio.to_thread(admin) == []
    assert await db.fetchval('SELECT disabled_at FROM "user"') is not None
    staff_events = await db.fetch(
        "SELECT e.kind, s.email FROM auth_event e JOIN staff s ON s.id = e.staff_id"
        " ORDER BY e.created_at, e.kind"
    )
    assert {(row["kind"], row["email"]) for row in staff_events} == {
        ("session_revoked", "sam@support.example"),
        ("staff_disabled", "ann@support.example"),
        ("session_revoked", "ann@support.example"),
    }
    rotor.assert_no_unhandled_errors()
