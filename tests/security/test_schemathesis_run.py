"""Schemathesis, as the attack ran it: `--checks all` with every phase, stateful included,
against a real `rotor serve` process, bounded in time. The first pass keeps one valid access
token for the whole run, so the fuzzer gets past authentication everywhere, and leaves out only
the operations that can end that token; the second pass runs those, with a token of its own and
the admin key. Every response must be no 5xx and as the OpenAPI document says."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from servers import ServerProcess, StartServer

from service.web.openapi import load_document

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Path(__file__).with_name("schemathesis.toml")
ADMIN_KEY = "schemathesis-admin-key-long-enough"
PASSWORD = "correct horse battery staple"
# The operations that can end the run's token: logout, deleting an account or a session (the
# stateful phase links GET /v1/sessions to DELETE /v1/sessions/{id}), and the admin's.
ENDS_THE_TOKEN = ["logout", "deleteMe", "deleteSession"]
ADMIN_PREFIX = "/v1/admin/"
# Seconds per pass (the three together about a minute and a half on two cores).
MAIN_PASS, ENDING_PASS, ADMIN_PASS = "35", "25", "20"


async def _token(server: ServerProcess, email: str) -> str:
    credentials = {"email": email, "password": PASSWORD}
    async with server.client() as http:
        async with http.post("/v1/register", json=credentials) as response:
            assert response.status == 201, await response.text()
        async with http.post("/v1/login", json=credentials) as response:
            assert response.status == 200, await response.text()
            token: str = (await response.json())["access_token"]
            return token


def _schemathesis(
    server: ServerProcess, token: str, seconds: str, *selection: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{server.url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-time",
        seconds,
        "--max-examples",
        "25",
        "--seed",
        "13",
        "--generation-deterministic",
        "--no-color",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        *selection,
    ]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=300, cwd=ROOT, check=False
    )


@pytest.mark.slow
async def test_schemathesis_checks_all_with_the_stateful_phase(serve: StartServer) -> None:
    server = await serve(
        AUTH_ADMIN_KEY=ADMIN_KEY,
        AUTH_LOGIN_MAX_FAILURES="1000000",
        AUTH_METRICS="true",
        # So that /oauth/introspect exists (it is 404 without a client) and refuses no auth.
        AUTH_INTROSPECTION_CLIENTS="fuzz-api:fuzz-api-secret-0123",
    )
    keeper = await _token(server, "keeper@example.com")
    excluded = []
    for operation_id in ENDS_THE_TOKEN:
        excluded += ["--exclude-operation-id", operation_id]
    first = await asyncio.to_thread(
        _schemathesis,
        server,
        keeper,
        MAIN_PASS,
        *excluded,
        "--exclude-path-regex",
        f"^{ADMIN_PREFIX}",
    )
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-2000:]
    # The token lived through the whole run.
    async with (
        server.client() as http,
        http.get("/v1/me", headers={"Authorization": f"Bearer {keeper}"}) as response,
    ):
        assert response.status == 200

    ender = await _token(server, "ender@example.com")
    included = []
    for operation_id in ENDS_THE_TOKEN:
        included += ["--include-operation-id", operation_id]
    second = await asyncio.to_thread(_schemathesis, server, ender, ENDING_PASS, *included)
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-2000:]
    admin = await asyncio.to_thread(
        _schemathesis, server, ADMIN_KEY, ADMIN_PASS, "--include-path-regex", f"^{ADMIN_PREFIX}"
    )
    assert admin.returncode == 0, admin.stdout[-6000:] + admin.stderr[-2000:]
    server.assert_no_unhandled_errors()
    assert load_document()["paths"]
