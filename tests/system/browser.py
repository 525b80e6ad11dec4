"""Headless Chromium driven by Selenium, and the small servers the browser tests need: a static
single-page app on another origin, and a reverse proxy mounting Rotor under a path prefix."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

SPA = Path(__file__).parent / "spa"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    # Rotor and the test servers listen on 127.0.0.1 only; "localhost" must not try ::1.
    "--host-resolver-rules=MAP localhost 127.0.0.1",
    "--window-size=1280,900",
]
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
}


def available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium(profile: Path) -> Iterator[webdriver.Chrome]:
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def run_flow(driver: webdriver.Chrome, page: str, base: str, email: str) -> dict[str, Any]:
    driver.get(page)
    result: dict[str, Any] = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "window.runFlow(arguments[0], arguments[1], 'correct horse battery staple').then(done);",
        base,
        email,
    )
    return result


def _spa_routes(app: web.Application) -> None:
    app.router.add_get("/", lambda _: web.FileResponse(SPA / "index.html"))
    app.router.add_get("/app.js", lambda _: web.FileResponse(SPA / "app.js"))


@asynccontextmanager
async def serving(app: web.Application, port: int) -> Any:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield
    finally:
        await runner.cleanup()


def spa_app() -> web.Application:
    app = web.Application()
    _spa_routes(app)
    return app


def proxy_app(upstream: str, prefix: str = "/auth") -> web.Application:
    """The SPA at /, and Rotor under `prefix` (the prefix stripped, Host kept, as nginx's
    `location /auth/ { proxy_pass http://rotor/; proxy_set_header Host $host; }` does)."""
    app = web.Application()
    _spa_routes(app)

    async def forward(request: web.Request) -> web.StreamResponse:
        path = request.rel_url.path_qs[len(prefix) :]
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as http,
            http.request(
                request.method, upstream + path, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            kept = CIMultiDict(
                (name, value)
                for name, value in answer.headers.items()
                if name.lower() not in _HOP_BY_HOP and name.lower() != "server"
            )
            return web.Response(status=answer.status, body=body, headers=kept)

    app.router.add_route("*", prefix + "/{tail:.*}", forward)
    return app
