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
from helpers import bearer, refresh, signed_in
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


async def _exercise(client: Any) -> list[int]:
    """Concurrent sign-ups, logins, refreshes and protected calls: their statuses."""

    async def one(index: int) -> list[int]:
        tokens = await signed_in(client, f"user{index}@example.com")
        rotated = await refresh(client, tokens["refresh_token"])
        me = await client.get("/v1/me", headers=bearer(await rotated.json()))
        sessions = await client.get("/v1/sessions", headers=bearer(tokens))
        return [rotated.status, me.status, sessions.status]

    results = await asyncio.gather(*(one(index) for index in range(12)), return_exceptions=True)
    return [status for result in results if isinstance(result, list) for status in result] + [
        500 for result in results if not isinstance(result, list)
    ]


async def test_every_flow_works_without_the_statement_cache(
    make_client: Any, bouncer_url: str
) -> None:
    client = await make_client(database_url=bouncer_url, db_prepared_statement_cache=False)
    assert set(await _exercise(client)) == {200}


async def test_the_statement_cache_breaks_behind_pgbouncer(
    make_client: Any, bouncer_url: str
) -> None:
    client = await make_client(database_url=bouncer_url, db_prepared_statement_cache=True)
    statuses = await _exercise(client)
    assert 503 in statuses or 500 in statuses, statuses
