"""Real `python -m service serve` processes, for tests that need more than the in-process app:
two processes on one database, a database that goes away, SIGTERM.

`ServerProcess` is one server; the `serve` fixture in conftest starts them and makes sure every
one is stopped at the end of the test. Each server's stderr goes to a file, so a test can read
what it logged and a failed start shows why.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from tests_support import TEST_SECRET

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0
_START_ATTEMPTS = 3
_WAIT_ATTEMPTS = 200


def free_port() -> int:
    """A TCP port that was free a moment ago (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServerStartError(RuntimeError):
    pass


class ServerProcess:
    """One `rotor serve` child process listening on 127.0.0.1:`port`."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, stderr_path: Path) -> None:
        self.process = process
        self.port = port
        self.stderr_path = stderr_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs: Any) -> aiohttp.ClientSession:
        """An HTTP client whose relative URLs go to this server (the shape of aiohttp's
        TestClient, so the flows in helpers.py work on it)."""
        return aiohttp.ClientSession(base_url=self.url, **kwargs)

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def assert_no_unhandled_errors(self) -> None:
        """Nothing reached the 500 branch of the error middleware, nothing crashed."""
        log = self.stderr()
        assert "unhandled error" not in log, log
        assert "Traceback" not in log, log

    def signal(self, signum: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signum)

    async def exit_code(self, within: float = STOP_TIMEOUT) -> int:
        """Wait for the process to end, off the event loop (the test's loop keeps serving);
        subprocess.TimeoutExpired if it is still running after `within` seconds."""
        return await asyncio.to_thread(self.process.wait, within)

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if that does not end it in time. Idempotent."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


StartServer = Callable[..., Awaitable[ServerProcess]]


def _environment(
    database_url: str, port: int, data_dir: Path, overrides: dict[str, str]
) -> dict[str, str]:
    # Only this test's settings reach the child: nothing inherited from the shell's AUTH_*.
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTH_", "ROTOR_"))
        and name not in ("DATABASE_URL", "TEST_DATABASE_URL")
    }
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": database_url,
        "AUTH_HOST": "127.0.0.1",
        "AUTH_PORT": str(port),
        "AUTH_JWT_SECRET": TEST_SECRET.decode(),
        "AUTH_BCRYPT_ROUNDS": "4",
        "ROTOR_DATA_DIR": str(data_dir),
        # "{port}" in a value is this server's port (AUTH_ISSUER=http://127.0.0.1:{port}).
        **{name: value.replace("{port}", str(port)) for name, value in overrides.items()},
    }


async def answer(
    http: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, dict[str, str], Any]:
    """Status, headers and JSON body (None for 204) of one request."""
    async with http.request(method, path, **kwargs) as response:
        body = await response.json() if response.status != 204 else None
        return response.status, dict(response.headers), body


async def backend_waiting_on_a_lock(db: asyncpg.Connection) -> int:
    """The pid of a server backend that waits for a lock (one the test holds): proof that a
    request is in flight, without guessing how long it takes to get there."""
    for _ in range(_WAIT_ATTEMPTS):
        pid = await db.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'rotor'"
            " AND wait_event_type = 'Lock' AND datname = current_database()"
        )
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no server backend came to wait for the lock")


async def _healthy(url: str) -> bool:
    timeout = aiohttp.ClientTimeout(total=2)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.get(f"{url}/healthz") as response,
        ):
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


async def start_server(
    database_url: str, workdir: Path, name: str, env: dict[str, str] | None = None
) -> ServerProcess:
    """Start a server and return once its /healthz answers 200."""
    for attempt in range(_START_ATTEMPTS):
        port = free_port()
        stderr_path = workdir / f"{name}-{attempt}.stderr"
        with stderr_path.open("wb") as stderr:
            # Popen returns at once, and the fixture's synchronous teardown needs a plain Popen.
            process = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "service", "serve"],
                cwd=ROOT,
                env=_environment(database_url, port, workdir, env or {}),
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
            )
        server = ServerProcess(process, port, stderr_path)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while process.poll() is None and loop.time() < deadline:
            if await _healthy(server.url):
                return server
            await asyncio.sleep(0.05)
        server.stop()
        # Another process may have taken the port between free_port() and bind: try another.
        if "address already in use" not in server.stderr().lower():
            break
    raise ServerStartError(f"{name} did not become healthy:\n{server.stderr()}")
