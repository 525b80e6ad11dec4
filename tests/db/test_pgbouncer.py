"""Behind a real PgBouncer in transaction mode: with ROTOR_DB_PREPARED_STATEMENT_CACHE=false every
flow works; with the cache on, statements clash across server connections (so the setting is
what makes the difference). Needs Debian's pgbouncer (.ci/run installs it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import PASSWORD, Client, bearer, refresh
from servers import free_port
from sqlalchemy.engine import make_url

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("pgbouncer") is None, reason="pgbouncer is not installed"),
]


@pytest.fixture(scope="module")
def bouncer_url(database_url: str) -> Iterator[str]:
    """A PgBouncer (transaction pooling, 2 server connections) in front of the run's database."""
    target = make_url(database_url)
    if not target.host or target.host.startswith("/"):
        pytest.skip("PgBouncer here forwards to TCP PostgreSQL (TEST_DATABASE_URL)")
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="rotor-pgbouncer-"))
    folder.chmod(0o755)  # pgbouncer drops root privileges to the postgres user
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
rotor = host={target.host} port={target.port or 5432} dbname={target.database} user={target.username}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 2
server_round_robin = 1
max_client_conn = 200
ignore_startup_parameters = extra_float_digits, statement_timeout, idle_in_transaction_session_timeout
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
"""
    )
    command = ["pgbouncer", str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    else:
        process.kill()
        pytest.fail("pgbouncer did not start")
    yield f"postgresql://{target.username}@127.0.0.1:{port}/rotor"
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(folder, ignore_errors=True)


async def _exercise(client: Client) -> list[int]:
    """Concurrent sign-ups, logins, refreshes and protected calls: the status of every answer.

    Each step records the server's status and the chain stops at the first failure (no token to
    go on with): only what the server answered counts, never an error of this helper.
    """

    async def one(index: int) -> list[int]:
        credentials = {"email": f"user{index}@example.com", "password": PASSWORD}
        statuses: list[int] = []
        registered = await client.post("/v1/register", json=credentials)
        statuses.append(registered.status)
        logged_in = await client.post("/v1/login", json=credentials)
        statuses.append(logged_in.status)
        if registered.status != 201 or logged_in.status != 200:
            return statuses
        tokens = await logged_in.json()
        rotated = await refresh(client, tokens["refresh_token"])
        statuses.append(rotated.status)
        if rotated.status == 200:
            me = await client.get("/v1/me", headers=bearer(await rotated.json()))
            statuses.append(me.status)
        sessions = await client.get("/v1/sessions", headers=bearer(tokens))
        statuses.append(sessions.status)
        return statuses

    results = await asyncio.gather(*(one(index) for index in range(12)))
    return [status for statuses in results for status in statuses]


async def test_every_flow_works_without_the_statement_cache(
    make_client: Any, bouncer_url: str
) -> None:
    client = await make_client(database_url=bouncer_url, db_prepared_statement_cache=False)
    assert set(await _exercise(client)) == {201, 200}  # sign-ups 201, everything else 200


async def test_the_statement_cache_breaks_behind_pgbouncer(
    make_client: Any, bouncer_url: str
) -> None:
    client = await make_client(database_url=bouncer_url, db_prepared_statement_cache=True)
    statuses = await _exercise(client)
    # The clash answers as the server reports it (a 500 or 503), not as an exception here.
    assert 503 in statuses or 500 in statuses, statuses
