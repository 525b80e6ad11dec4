"""What an asynchronous standby loses, shown for real.

A primary and a standby streaming asynchronously (plain PostgreSQL, as a non-root OS user); Rotor
on the two-host URL. A rotation answered 200 after the standby's last received WAL is lost when
the primary dies and the standby is promoted: the new primary does not know the token it issued.
The client holding it gets `401 invalid_grant` (not `token_reused`: nothing is revoked), and a
retry with the parent, which the new primary still has unspent, is a fresh rotation: 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hacluster import Formation, require_pg_auto_failover, short_folder
from helpers import PASSWORD
from servers import StartServer, answer, free_port

# One cluster at a time: they share the OS user that runs PostgreSQL and two cores.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-ha")]

DB_TIMEOUTS = {"ROTOR_DB_CONNECT_TIMEOUT": "1", "ROTOR_DB_STATEMENT_TIMEOUT": "2"}
ATTEMPTS = 300
ROOT = Path(__file__).resolve().parents[2]


class Pair:
    """initdb + pg_basebackup: a primary and an asynchronous hot standby."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin = bin_dir
        # The same OS user and groups as the pg_auto_failover formation.
        self._who = Formation(root, bin_dir)
        self.superuser = self._who.superuser
        self.ports = {"primary": free_port(), "standby": free_port()}

    def _run(self, *args: str) -> None:
        done = subprocess.run(
            args,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={"PATH": f"{self.bin}:/usr/bin:/bin", "LANG": "C.UTF-8"},
            **self._who._identity(),  # the formation's OS user and groups
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def url(self, name: str, database: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.ports[name]}/{database}"

    def _start(self, name: str) -> None:
        options = f"-p {self.ports[name]} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            str(self.bin / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(self.root / name),
            "-l",
            str(self.root / f"{name}.log"),
            "-o",
            options,
        )

    async def start(self) -> None:
        if self._who.user is not None:
            os.chown(self.root, self._who.user.pw_uid, self._who.user.pw_gid)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.root / "primary"),
            "--auth=trust",
            "-U",
            self.superuser,
        )
        self._start("primary")
        self._run(
            str(self.bin / "pg_basebackup"),
            "-D",
            str(self.root / "standby"),
            "-R",
            "--checkpoint=fast",
            "-d",
            self.url("primary"),
        )
        self._start("standby")
        conn = await asyncpg.connect(self.url("primary"))
        try:
            await conn.execute("CREATE DATABASE rotor")
        finally:
            await conn.close()

    def kill_primary(self) -> None:
        pid = int((self.root / "primary" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)

    def promote_standby(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "promote", "-w", "-D", str(self.root / "standby"))

    def stop(self) -> None:
        for name in ("standby", "primary"):
            pidfile = self.root / name / "postmaster.pid"
            with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(self.root)], check=False)


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    pair = Pair(short_folder("rotor-pair-"), require_pg_auto_failover())
    try:
        await pair.start()
        yield pair
    finally:
        pair.stop()


async def _replayed(pair: Pair) -> None:
    """Until the standby has replayed everything the primary wrote."""
    primary = await asyncpg.connect(pair.url("primary"))
    standby = await asyncpg.connect(pair.url("standby"))
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(ATTEMPTS):
            if await standby.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", target):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the standby did not catch up")
    finally:
        await primary.close()
        await standby.close()


async def _stop_streaming(pair: Pair) -> None:
    """The standby stops receiving WAL (a lagging or partitioned asynchronous standby)."""
    standby = await asyncpg.connect(pair.url("standby"))
    try:
        await standby.execute("ALTER SYSTEM SET primary_conninfo = ''")
        await standby.execute("SELECT pg_reload_conf()")
        for _ in range(ATTEMPTS):
            if not await standby.fetchval("SELECT count(*) FROM pg_stat_wal_receiver"):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the standby kept streaming")
    finally:
        await standby.close()


async def _past_503(http: Any, token: str) -> tuple[int, Any]:
    """The answer to a refresh once a node takes writes again (503s until then)."""
    for _ in range(ATTEMPTS):
        status, _, body = await answer(http, "POST", "/v1/refresh", json={"refresh_token": token})
        if status != 503:
            return status, body
        await asyncio.sleep(0.1)
    raise AssertionError("no node took writes again")


async def test_rotation_acknowledged_after_the_last_replayed_wal_is_lost(
    pair: Pair, serve: StartServer
) -> None:
    url = (
        f"postgresql://{pair.superuser}@127.0.0.1:{pair.ports['primary']},"
        f"127.0.0.1:{pair.ports['standby']}/rotor"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ROTOR_"))}
    migrated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "service", "migrate"],
        env={**env, "DATABASE_URL": url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    server = await serve("rotor", database=url, **DB_TIMEOUTS)
    async with server.client() as http:
        body = {"email": "ada@example.com", "password": PASSWORD}
        assert (await answer(http, "POST", "/v1/register", json=body))[0] == 201
        status, _, login = await answer(http, "POST", "/v1/login", json=body)
        assert status == 200
        status, _, first = await answer(
            http, "POST", "/v1/refresh", json={"refresh_token": login["refresh_token"]}
        )
        assert status == 200
        await _replayed(pair)  # `first` is on the standby
        await _stop_streaming(pair)
        status, _, second = await answer(
            http, "POST", "/v1/refresh", json={"refresh_token": first["refresh_token"]}
        )
        assert status == 200  # acknowledged, on the primary only
        pair.kill_primary()
        pair.promote_standby()

        # The acknowledged rotation is gone: its token is unknown to the new primary.
        status, lost = await _past_503(http, second["refresh_token"])
        assert (status, lost["error"]) == (401, "invalid_grant")
        # Its parent is still unspent there: the retry with it is a fresh rotation.
        status, again = await _past_503(http, first["refresh_token"])
        assert status == 200
        assert again["refresh_token"] != second["refresh_token"]
        status, _ = await _past_503(http, again["refresh_token"])
        assert status == 200
    server.assert_no_unhandled_errors()
