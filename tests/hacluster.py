"""A real pg_auto_failover formation on loopback: a monitor and two data nodes with synchronous
replication, each a `pg_autoctl ... --run` process (Debian's postgresql-NN-auto-failover and
pg-auto-failover-cli), run as a non-root OS user in the test's own folder.

The monitor's timers are shortened so that a failover takes seconds, not the default half
minute (docs/high-availability.md says what they are in production and why).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import glob
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from servers import free_port

OS_USER = "rotor_ha"
DATABASE = "rotor"
START_TIMEOUT = 120.0
# Milliseconds; the defaults are 5000, 5000, 2, 2000, 20000 and 30000.
MONITOR_TIMERS = {
    "pgautofailover.health_check_period": 1000,
    "pgautofailover.health_check_timeout": 1000,
    "pgautofailover.health_check_max_retries": 1,
    "pgautofailover.health_check_retry_delay": 500,
    "pgautofailover.node_considered_unhealthy_timeout": 2000,
    "pgautofailover.primary_demote_timeout": 3000,
}


def _pg_bin() -> Path | None:
    """The bin folder of a PostgreSQL whose pgautofailover extension is installed."""
    for control in sorted(glob.glob("/usr/share/postgresql/*/extension/pgautofailover.control")):
        version = Path(control).parts[4]
        bin_dir = Path(f"/usr/lib/postgresql/{version}/bin")
        if (bin_dir / "pg_ctl").is_file():
            return bin_dir
    return None


def require_pg_auto_failover() -> Path:
    """The PostgreSQL bin folder; skips the test when the packages are missing, except in CI,
    where the same absence fails it (.ci/run installs them)."""
    bin_dir = _pg_bin()
    if bin_dir is not None and shutil.which("pg_autoctl"):
        return bin_dir
    reason = "pg_auto_failover is not installed (apt-get install postgresql-15-auto-failover pg-auto-failover-cli)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}: CI must run the failover tests")
    pytest.skip(reason)


def short_folder(prefix: str) -> Path:
    """A fresh folder with a short path (Unix socket paths are limited to about 100 bytes) that
    the OS user may enter (pytest's tmp_path sits under a folder only root may)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def _os_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(OS_USER)
    subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            OS_USER,
        ],
        capture_output=True,
        check=False,
    )
    return pwd.getpwnam(OS_USER)


class Formation:
    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.user = _os_user()
        self.monitor_port = free_port()
        self.ports = {"node1": free_port(), "node2": free_port()}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.killed: set[str] = set()
        # initdb makes the OS user the database superuser.
        self.superuser = self.user.pw_name if self.user else getpass.getuser()

    @property
    def monitor_url(self) -> str:
        return f"postgresql://autoctl_node@127.0.0.1:{self.monitor_port}/pg_auto_failover?sslmode=disable"

    def node_url(self, name: str, database: str = DATABASE) -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.ports[name]}/{database}"

    def _env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "HOME": str(self.root),
            "XDG_CONFIG_HOME": str(self.root / "config"),
            "XDG_DATA_HOME": str(self.root / "share"),
            "XDG_RUNTIME_DIR": str(self.root / "run"),
            "LANG": "C.UTF-8",
        }

    def _identity(self) -> dict[str, Any]:
        """Popen's user and groups: our OS user, in Debian's `postgres` group, which may write
        the compiled-in Unix socket folder /var/run/postgresql."""
        if self.user is None:
            return {}
        extra = []
        with contextlib.suppress(KeyError):
            extra.append(grp.getgrnam("postgres").gr_gid)
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": extra}

    def _popen(self, name: str, args: list[str]) -> None:
        log = (self.root / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            ["pg_autoctl", *args],
            cwd=self.root,
            env=self._env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own group, so killpg takes it whole
            **self._identity(),
        )

    def run(self, args: list[str]) -> str:
        done = subprocess.run(
            ["pg_autoctl", *args],
            cwd=self.root,
            env=self._env(),
            capture_output=True,
            text=True,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for sub in ("config", "share", "run"):
            (self.root / sub).mkdir(exist_ok=True)
        if self.user is not None:
            for path in [self.root, *self.root.iterdir()]:
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        common = [
            "--auth",
            "trust",
            "--no-ssl",
            "--hostname",
            "127.0.0.1",
            "--listen",
            "127.0.0.1",
            "--pgctl",
            str(self.bin_dir / "pg_ctl"),
            "--run",
        ]
        self._popen(
            "monitor",
            [
                "create",
                "monitor",
                "--pgdata",
                str(self.root / "monitor"),
                "--pgport",
                str(self.monitor_port),
                *common,
            ],
        )
        monitor = await self._wait_connect(
            f"postgresql://{self.superuser}@127.0.0.1:{self.monitor_port}/pg_auto_failover",
            "monitor",
        )
        try:
            for name, value in MONITOR_TIMERS.items():
                await monitor.execute(f"ALTER SYSTEM SET {name} = {value}")
            await monitor.execute("SELECT pg_reload_conf()")
        finally:
            await monitor.close()
        for name in ("node1", "node2"):
            self._popen(
                name,
                [
                    "create",
                    "postgres",
                    "--pgdata",
                    str(self.root / name),
                    "--pgport",
                    str(self.ports[name]),
                    "--name",
                    name,
                    "--dbname",
                    DATABASE,
                    "--monitor",
                    self.monitor_url,
                    *common,
                ],
            )
            await self.wait_states(
                {"node1": ("primary", "wait_primary", "single")}
                if name == "node1"
                else {"node1": ("primary",), "node2": ("secondary",)},
                nudge="node1",
            )

    async def _wait_connect(self, url: str, name: str) -> asyncpg.Connection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while True:
            try:
                return await asyncpg.connect(url, timeout=2)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if loop.time() > deadline or self.processes[name].poll() is not None:
                    raise AssertionError(f"{name} did not start:\n{self.log(name)}") from None
                await asyncio.sleep(0.2)

    async def states(self) -> dict[str, tuple[str, str]]:
        """Each node's (reported, assigned) state, as the monitor has them."""
        conn = await asyncpg.connect(
            f"postgresql://{self.superuser}@127.0.0.1:{self.monitor_port}/pg_auto_failover",
            timeout=5,
        )
        try:
            if await conn.fetchval("SELECT to_regclass('pgautofailover.node')") is None:
                return {}  # the monitor is still installing its extension
            rows = await conn.fetch(
                "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
            )
        finally:
            await conn.close()
        return {row[0]: (row[1], row[2]) for row in rows}

    async def wait_states(
        self,
        wanted: dict[str, tuple[str, ...]],
        nudge: str | None = None,
        within: float = START_TIMEOUT,
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            states = await self.states()
            if all(
                name in states and states[name][0] in ok and states[name][1] in ok
                for name, ok in wanted.items()
            ):
                return
            if loop.time() > deadline:
                logs = "\n".join(self.log(name)[-3000:] for name in self.processes)
                raise AssertionError(f"formation stuck in {states}:\n{logs}")
            if nudge is not None:
                # A standby's base backup waits for a checkpoint on the primary: ask for one.
                with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
                    conn = await asyncpg.connect(self.node_url(nudge, "postgres"), timeout=2)
                    await conn.execute("CHECKPOINT")
                    await conn.close()
            await asyncio.sleep(0.3)

    async def primary(self) -> str:
        states = await self.states()
        writable = ("primary", "wait_primary", "single")
        return next(
            name
            for name, (reported, assigned) in states.items()
            if reported in writable and assigned in writable and name not in self.killed
        )

    def kill(self, name: str) -> None:
        """SIGKILL the node's pg_autoctl and its PostgreSQL (postmaster and backends): the host
        is gone. (Killing the postmaster alone is a restart: pg_autoctl starts it again.)"""
        self.killed.add(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait()

    def stop(self) -> None:
        """SIGKILL every node's process group (pg_autoctl, PostgreSQL and its backends): the
        formation is thrown away, and a graceful stop costs seconds per node."""
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(self.root, ignore_errors=True)
