"""Real failovers of a pg_auto_failover formation under refresh and login load.

Two `rotor serve` processes reach a monitor-managed primary and synchronous standby through a
multi-host DATABASE_URL (each node behind a TcpProxy, so a test can also cut the network).
Several clients each follow their own refresh-token chain, and one logs in again and again.
Then the primary fails (killed, switched over, or cut off) and the tests check the contract:
only 503s (never a 500) until a node takes writes again, then 200s from the same processes;
every refresh token that was answered exists afterwards with its lineage; a client retrying
after a 503 or no answer gets 200 with the same token, never token_reused; no chain splits.
Each scenario prints its figures: seconds without a 2xx, the 503 count, acknowledged writes lost.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from hacluster import Formation, require_pg_auto_failover, short_folder
from helpers import PASSWORD
from servers import ServerProcess, StartServer, answer
from tcpproxy import TcpProxy

# One cluster at a time: they share the OS user that runs PostgreSQL and two cores.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres-ha")]

CLIENTS = 4
ROOT = Path(__file__).resolve().parents[2]
DB_TIMEOUTS = {"ROTOR_DB_CONNECT_TIMEOUT": "1", "ROTOR_DB_STATEMENT_TIMEOUT": "2"}
ANSWER_BOUND = aiohttp.ClientTimeout(total=10)
SUCCESSES_AFTER = 5  # rotations each chain must make after the fault
SCENARIO_BOUND = 90.0  # seconds; the load stops by itself after this, whatever happened


@dataclass
class Chain:
    """One client's session: the refresh tokens it was answered, in order."""

    email: str
    tokens: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[Any] = field(default_factory=list)
    # (started, ended) of every request that got no 2xx, on the loop's clock
    failed: list[tuple[float, float]] = field(default_factory=list)
    ok_after_fault: int = 0


@dataclass
class Cluster:
    formation: Formation
    proxies: dict[str, TcpProxy]
    url: str


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    bin_dir = require_pg_auto_failover()
    formation = Formation(short_folder("rotor-ha-"), bin_dir)
    proxies: dict[str, TcpProxy] = {}
    try:
        await formation.start()
        for name, port in formation.ports.items():
            proxies[name] = TcpProxy("127.0.0.1", port)
            await proxies[name].start()
        hosts = ",".join(f"127.0.0.1:{proxies[name].port}" for name in ("node1", "node2"))
        url = f"postgresql://{formation.superuser}@{hosts}/rotor?target_session_attrs=read-write"
        yield Cluster(formation, proxies, url)
    finally:
        for proxy in proxies.values():
            await proxy.close()
        formation.stop()


async def migrate(url: str) -> None:
    """`rotor migrate` with the multi-host URL, as a deploy job runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ROTOR_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "migrate",
        cwd=ROOT,
        env={**env, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()


async def start_rotors(cluster: Cluster, serve: StartServer, tmp_path: Path) -> list[ServerProcess]:
    await migrate(cluster.url)
    return [
        await serve(f"rotor{i}", database=cluster.url, AUTH_REUSE_GRACE="30", **DB_TIMEOUTS)
        for i in range(2)
    ]


async def _ask(
    http: aiohttp.ClientSession, path: str, body: dict[str, Any]
) -> tuple[int | None, Any]:
    try:
        status, _, payload = await answer(http, "POST", path, json=body, timeout=ANSWER_BOUND)
    except (aiohttp.ClientError, TimeoutError):
        return None, None  # no answer: the client cannot know whether it happened
    return status, payload


class Load:
    """The clients, running until `stop()` or SCENARIO_BOUND."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers
        self.chains = [Chain(f"user{i}@example.com") for i in range(CLIENTS)]
        self.logins = Chain("login@example.com")
        self.fault_at: float | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()

    async def start(self) -> None:
        self.https = [server.client() for server in self.servers]
        for chain in [*self.chains, self.logins]:
            status, body = await _ask(
                self.https[0], "/v1/register", {"email": chain.email, "password": PASSWORD}
            )
            assert status == 201, body
        for chain in self.chains:
            status, body = await _ask(
                self.https[0], "/v1/login", {"email": chain.email, "password": PASSWORD}
            )
            assert status == 200, body
            chain.tokens.append(body["refresh_token"])
        self._tasks = [
            asyncio.create_task(self._refresher(chain, i)) for i, chain in enumerate(self.chains)
        ]
        self._tasks.append(asyncio.create_task(self._login_loop()))

    def _record(self, chain: Chain, status: int | None, body: Any, started: float) -> bool:
        chain.statuses[str(status)] += 1
        if status is not None and 200 <= status < 300:
            if self.fault_at is not None and started > self.fault_at:
                chain.ok_after_fault += 1
            return True
        chain.failed.append((started, self._loop.time()))
        if status not in (None, 503):
            chain.unexpected.append((status, body))
        return False

    async def _refresher(self, chain: Chain, index: int) -> None:
        turn = index
        while not self._stop.is_set():
            http = self.https[turn % len(self.https)]
            turn += 1
            started = self._loop.time()
            status, body = await _ask(http, "/v1/refresh", {"refresh_token": chain.tokens[-1]})
            if self._record(chain, status, body, started):
                chain.tokens.append(body["refresh_token"])
            elif status not in (None, 503):
                return  # the chain is broken: the test fails on `unexpected`
            else:
                await asyncio.sleep(0.1)  # pace the retries (Retry-After says 1 s)

    async def _login_loop(self) -> None:
        turn = 0
        while not self._stop.is_set():
            started = self._loop.time()
            status, body = await _ask(
                self.https[turn % 2],
                "/v1/login",
                {"email": self.logins.email, "password": PASSWORD},
            )
            turn += 1
            if self._record(self.logins, status, body, started):
                self.logins.tokens.append(body["refresh_token"])
            else:
                await asyncio.sleep(0.1)

    async def warm(self) -> None:
        """Until every chain has rotated a few times before the fault."""
        # Polled, not awaited on an Event: the condition spans every client's progress.
        while min(len(chain.tokens) for chain in self.chains) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    def fault(self) -> None:
        self.fault_at = self._loop.time()

    async def recovered(self) -> None:
        """Until every client has been answered 2xx a few times after the fault."""
        deadline = self._loop.time() + SCENARIO_BOUND
        everyone = [*self.chains, self.logins]
        while any(chain.ok_after_fault < SUCCESSES_AFTER for chain in everyone):
            broken = [chain.unexpected for chain in everyone if chain.unexpected]
            assert not broken, broken
            assert self._loop.time() < deadline, [c.statuses for c in everyone]
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)
        for http in self.https:
            await http.close()

    def figures(self, name: str) -> dict[str, Any]:
        everyone = [*self.chains, self.logins]
        failed = [span for chain in everyone for span in chain.failed]
        statuses: Counter[str] = Counter()
        for chain in everyone:
            statuses.update(chain.statuses)
        unavailable = (
            max(end for _, end in failed) - min(start for start, _ in failed) if failed else 0.0
        )
        return {
            "scenario": name,
            "unavailable_s": round(unavailable, 1),
            "answers": dict(statuses),
            "no_2xx_requests": len(failed),
        }


async def check_nothing_lost(cluster: Cluster, load: Load, servers: list[ServerProcess]) -> int:
    """Every 2xx answer is in the new primary; each chain is one line. Returns writes lost."""
    primary = await cluster.formation.primary()
    conn = await asyncpg.connect(cluster.formation.node_url(primary), timeout=5)
    try:
        rows = await conn.fetch("SELECT id, parent_id FROM refresh_token")
        splits = await conn.fetch(
            "SELECT parent_id FROM refresh_token WHERE parent_id IS NOT NULL"
            " GROUP BY parent_id HAVING count(*) > 1"
        )
    finally:
        await conn.close()
    parent_of = {row["id"]: row["parent_id"] for row in rows}
    lost = 0
    for chain in load.chains:
        ids = [uuid.UUID(hex=token.split(".")[0]) for token in chain.tokens]
        lost += sum(1 for token_id in ids if token_id not in parent_of)
        for parent, child in itertools.pairwise(ids):
            if child in parent_of:
                assert parent_of[child] == parent, "a chain's lineage is not the answered one"
    lost += sum(
        1 for token in load.logins.tokens if uuid.UUID(hex=token.split(".")[0]) not in parent_of
    )
    assert not splits, f"chains split at {splits}"
    for server in servers:
        assert server.process.poll() is None, "a server process died"
        server.assert_no_unhandled_errors()
    for chain in [*load.chains, load.logins]:
        assert "500" not in chain.statuses, chain.statuses
        assert set(chain.statuses) <= {"200", "503", "None"}, chain.statuses
    return lost


async def drill(
    name: str,
    cluster: Cluster,
    serve: StartServer,
    tmp_path: Path,
    fault: Callable[[], Awaitable[None]],
) -> dict[str, Any]:
    servers = await start_rotors(cluster, serve, tmp_path)
    load = Load(servers)
    await load.start()
    try:
        await load.warm()
        load.fault()
        await fault()
        await load.recovered()
    finally:
        await load.stop()
    figures = load.figures(name)
    figures["acknowledged_writes_lost"] = await check_nothing_lost(cluster, load, servers)
    print(f"\nFAILOVER {figures}")
    assert figures["acknowledged_writes_lost"] == 0
    return figures


async def test_primary_killed_under_load(
    cluster: Cluster, serve: StartServer, tmp_path: Path
) -> None:
    async def kill_primary() -> None:
        primary = await cluster.formation.primary()
        cluster.formation.kill(primary)
        # The host is gone: its address refuses connections, as a dead machine's would.
        await cluster.proxies[primary].set_mode("refuse")

    figures = await drill("kill -9 of the primary", cluster, serve, tmp_path, kill_primary)
    assert figures["no_2xx_requests"] > 0  # the fault was seen, and survived


async def test_planned_switchover_under_load(
    cluster: Cluster, serve: StartServer, tmp_path: Path
) -> None:
    async def switchover() -> None:
        before = await cluster.formation.primary()
        await asyncio.to_thread(
            cluster.formation.run,
            ["perform", "switchover", "--monitor", cluster.formation.monitor_url],
        )
        assert await cluster.formation.primary() != before

    await drill("planned switchover", cluster, serve, tmp_path, switchover)


async def test_network_to_the_primary_cut_mid_rotation(
    cluster: Cluster, serve: StartServer, tmp_path: Path
) -> None:
    async def cut() -> None:
        primary = await cluster.formation.primary()
        # Rotor's packets to the primary vanish, rotations in flight included; the cluster
        # then loses the node too (its host is gone) and promotes the standby.
        await cluster.proxies[primary].set_mode("blackhole")
        cluster.formation.kill(primary)

    await drill("network to the primary cut", cluster, serve, tmp_path, cut)
