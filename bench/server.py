"""`rotor serve --workers N` as a real process, configured for the benchmark."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.ceilings import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
# The resource server of the introspection scenario (AUTH_INTROSPECTION_CLIENTS).
INTROSPECTOR = ("bench-api", "bench-api-secret-0123456789")


@dataclass
class Server:
    url: str
    pid: int
    workers: list[int]
    exit_code: int | None = None

    def rss_mb(self) -> dict[int, float]:
        """Each worker's resident set size, from /proc."""
        sizes = {}
        for pid in self.workers:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes[pid] = int(line.split()[1]) / 1024
        return sizes


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far, from /proc/PID/stat."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


@contextmanager
def rotor_server(
    database_url: str,
    *,
    workers: int,
    jwt_secret: bytes,
    data_dir: Path,
    pool_size: int | None,
    log: Path,
) -> Iterator[Server]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTH_HOST": "127.0.0.1",
        "AUTH_PORT": str(port),
        "AUTH_JWT_SECRET": jwt_secret.decode(),
        "AUTH_BCRYPT_ROUNDS": "10",
        "ROTOR_DATA_DIR": str(data_dir),
        "AUTH_INTROSPECTION_CLIENTS": ":".join(INTROSPECTOR),
    }
    if pool_size is not None:
        env["ROTOR_DB_POOL_SIZE"] = str(pool_size)
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own entry point
            [sys.executable, "-m", "service", "serve", "--workers", str(workers)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    server = Server(url=f"http://127.0.0.1:{port}", pid=process.pid, workers=[process.pid])
    try:
        wait_for_port(port, process)
        deadline = time.monotonic() + 60
        while workers > 1 and len(_children(process.pid)) < workers:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"rotor serve did not start {workers} workers, see {log}")
            time.sleep(0.05)
        if workers > 1:
            server.workers = _children(process.pid)
        with urllib.request.urlopen(f"{server.url}/readyz", timeout=10) as response:  # noqa: S310
            assert response.status == 200
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            server.exit_code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            server.exit_code = process.wait()
