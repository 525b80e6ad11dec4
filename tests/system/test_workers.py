"""`rotor serve --workers 2` as a real process: both workers answer on one port, SIGTERM stops
them cleanly, and a worker's death stops the service with a non-zero exit code.

Which worker answered is read from /proc: the worker holding the server side of the connection
(nothing is added to responses for this).
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, TEST_SECRET
from servers import free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)"),
]

START_TIMEOUT = 30.0


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split()]


def socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 TCP socket with these ports, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.split(":")[1], 16) == local_port and (
            int(remote.split(":")[1], 16) == remote_port
        ):
            return inode
    return None


def holder(pids: list[int], inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:  # closed while we look
                continue
    return None


def answering_worker(port: int, workers: list[int]) -> int | None:
    """GET /healthz on a new connection; the worker that accepted it, while it is still open."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == b'{"status":"ok"}'
        client_port = connection.sock.getsockname()[1]
        inode = socket_inode(port, client_port)
        return None if inode is None else holder(workers, inode)
    finally:
        connection.close()


@pytest.fixture
def server(
    database_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """`rotor serve --workers 2`; a test may add environment with indirect parametrization."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUTH_PORT": str(port),
        "AUTH_JWT_SECRET": TEST_SECRET.decode(),
        "ROTOR_DATA_DIR": str(tmp_path),
        **getattr(request, "param", {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "serve", "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "serve.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.05)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_for_listeners(workers: list[int], port: int) -> None:
    """Until each worker holds a listening socket on the port (they bind independently)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        listening = set()
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].split(":")[1], 16) == port:
                pid = holder(workers, fields[9])
                if pid is not None:
                    listening.add(pid)
        if listening == set(workers):
            return
        assert time.monotonic() < deadline, f"only {listening} of {workers} listen"
        time.sleep(0.05)


def both_workers_answer(process: subprocess.Popen[bytes], port: int) -> list[int]:
    """The two workers' pids, once 60 GET /healthz on new connections reached both."""
    workers = children(process.pid)
    assert len(workers) == 2
    wait_for_listeners(workers, port)
    # The kernel spreads connections over the listeners by a hash of their addresses: the chance
    # that 60 connections all land on one of two workers is 2**-59.
    answered = {answering_worker(port, workers) for _ in range(60)}
    assert answered == set(workers)
    return workers


def test_two_workers_answer_on_one_port_and_sigterm_exits_zero(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = server
    workers = both_workers_answer(process, port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


def test_a_dying_worker_stops_the_others_and_exits_non_zero(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = server
    workers = children(process.pid)
    assert len(workers) == 2
    wait_for_listeners(workers, port)
    os.kill(workers[0], signal.SIGKILL)
    assert process.wait(timeout=30) == 4
    assert not Path(f"/proc/{workers[1]}").exists()


@pytest.mark.parametrize("server", [{"AUTH_METRICS": "true"}], indirect=True)
def test_metrics_add_up_over_workers(server: tuple[subprocess.Popen[bytes], int]) -> None:
    """A scrape of any one worker counts the requests that every worker served."""
    process, port = server
    both_workers_answer(process, port)  # 60 requests, spread over both
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        assert response.status == 200
        text = response.read().decode()
    finally:
        connection.close()
    served = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("rotor_http_requests_total{") and 'route="/healthz"' in line
    )
    assert served == 60
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
