"""`python -m bench`: seed a fresh database, start `rotor serve --workers N`, measure the
ceilings and the scenarios in the same run, print one table and write bench/results/*.json.

Each round measures each scenario right after its ceiling, so that each ratio compares figures
taken seconds apart on a machine whose speed drifts, and settles the database (VACUUM,
CHECKPOINT) before each pair, so that no scenario pays for the writes of the one before; the
table shows the median over rounds.
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import ceilings
from bench.database import (
    SLOW_USERS,
    Seeds,
    email,
    fresh_database,
    postgres_server,
    settle,
    slow_email,
)
from bench.database import refresh_token as seeded_refresh_token
from bench.server import INTROSPECTOR, Server, cpu_seconds, rotor_server
from bench.wrk import Load, WrkResult, ensure_wrk
from service.ops.migrate import upgrade

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
JWT_SECRET = b"bench-secret-of-at-least-thirty-two-bytes"
REFRESH_CEILING_CLIENTS = 8
ME_SESSIONS = 256
NO_STALL_ME_CONNECTIONS = 8
SCALE_SESSIONS = 1_000_000
MEMORY_STEP = 100_000


@dataclass
class Row:
    """One line of the table: medians over the rounds, and the checks it must pass."""

    name: str
    runs: list[WrkResult] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU per 2xx response
    ceilings: list[float] = field(default_factory=list)
    ceiling_name: str = ""
    targets: list[tuple[str, Callable[[Row], bool]]] = field(default_factory=list)
    note: str = ""

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(run, attribute) for run in self.runs)

    @property
    def ok_per_second(self) -> float:
        return self.median("ok_per_second")

    @property
    def p50(self) -> float:
        return self.median("p50_ms")

    @property
    def p99(self) -> float:
        return self.median("p99_ms")

    @property
    def errors(self) -> int:
        return sum(run.errors for run in self.runs)

    @property
    def cpu(self) -> float | None:
        return statistics.median(self.cpu_us) if self.cpu_us else None

    @property
    def ratio(self) -> float | None:
        """Median of each round's ratio to the ceiling measured in that round."""
        if not self.ceilings:
            return None
        pairs = zip(self.runs, self.ceilings, strict=True)
        return statistics.median(run.ok_per_second / ceiling for run, ceiling in pairs)

    def verdicts(self) -> list[tuple[str, bool]]:
        return [(label, check(self)) for label, check in self.targets] if self.runs else []


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 s per scenario, one round")
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds to take medians over")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--pool-size", type=int, help="ROTOR_DB_POOL_SIZE (default: Rotor's)")
    parser.add_argument("--sessions", type=int, default=10_000, help="seeded sessions")
    parser.add_argument("--scale", action="store_true", help="refresh at 1,000,000 sessions too")
    parser.add_argument(
        "--memory", action="store_true", help="worker RSS after 100k and 200k requests"
    )
    parser.add_argument(
        "--only",
        help="comma-separated scenarios: refresh,oauth_token,me,introspect,login,no_stalls",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 2.0, 1
    if args.connections % args.wrk_threads:
        parser.error("--connections must be a multiple of --wrk-threads")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace, seeds: Seeds, server: Server) -> None:
        self.args = args
        self.seeds = seeds
        self.server = server
        self.me_tokens = [seeds.access_token(i) for i in seeds.take(ME_SESSIONS)]

    def load(self, scenario: str, data: list[str], **options: Any) -> Load:
        options.setdefault("connections", self.args.connections)
        options.setdefault("seconds", self.args.seconds)
        options.setdefault("threads", self.args.wrk_threads)
        return Load(self.server.url, scenario, data, **options)

    def refresh(self, **options: Any) -> WrkResult:
        connections = options.get("connections", self.args.connections)
        tokens = [seeded_refresh_token(i) for i in self.seeds.take(connections)]
        return self.load("refresh", tokens, **options).run()

    def oauth_token(self, **options: Any) -> WrkResult:
        """The refresh scenario through POST /oauth/token (the same rotation, form-encoded)."""
        connections = options.get("connections", self.args.connections)
        tokens = [seeded_refresh_token(i) for i in self.seeds.take(connections)]
        return self.load("oauth_token", tokens, **options).run()

    def me(self, **options: Any) -> WrkResult:
        return self.load("me", self.me_tokens, **options).run()

    def introspect(self, **options: Any) -> WrkResult:
        """The me scenario's tokens, introspected by a resource server (HTTP Basic)."""
        credentials = base64.b64encode(":".join(INTROSPECTOR).encode()).decode()
        lines = [f"{credentials} {token}" for token in self.me_tokens]
        return self.load("introspect", lines, **options).run()

    def login(self, rounds: int, **options: Any) -> WrkResult:
        return self.load("login", self._emails(rounds), **options).run()

    def _emails(self, rounds: int) -> list[str]:
        if rounds == 12:
            return [slow_email(i) for i in range(1, SLOW_USERS + 1)]
        return [email(i) for i in range(1, 1001)]

    def measured(
        self, row: Row, run: Callable[[], WrkResult], pids: list[int] | None = None
    ) -> None:
        """Run a scenario into `row`, with the server's CPU time per successful response."""
        pids = pids or self.server.workers
        before = cpu_seconds(pids)
        result = run()
        used = cpu_seconds(pids) - before
        row.runs.append(result)
        ok = result.requests - result.non2xx
        row.cpu_us.append(used / ok * 1e6 if ok else float("nan"))

    def no_stalls(self) -> WrkResult:
        flood = self.load("login", self._emails(10)).start()
        time.sleep(0.5)  # let the flood fill the bcrypt threads first
        me = self.load("me", self.me_tokens, connections=NO_STALL_ME_CONNECTIONS).start()
        result = me.result()
        flood.result()
        return result


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    ensure_wrk()
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="rotor-bench-"))
    log = work / "server.log"
    rows = {
        "refresh": Row(
            "refresh",
            ceiling_name="pgbench rotation tx/s (8 clients)",
            targets=[
                (">=40% of ceiling", lambda r: (r.ratio or 0) >= 0.40),
                ("p99<=50ms", lambda r: r.p99 <= 50),
                ("0 errors", lambda r: r.errors == 0),
            ],
        ),
        "oauth_token": Row(
            "refresh via POST /oauth/token",
            ceiling_name="pgbench rotation tx/s (8 clients)",
            targets=[
                (">=40% of ceiling", lambda r: (r.ratio or 0) >= 0.40),
                ("p99<=50ms", lambda r: r.p99 <= 50),
                ("0 errors", lambda r: r.errors == 0),
            ],
        ),
        "me": Row(
            "GET /v1/me",
            ceiling_name="bare aiohttp+PyJWT req/s (1 process)",
            targets=[
                (">=60% of ceiling", lambda r: (r.ratio or 0) >= 0.60),
                ("p99<=30ms", lambda r: r.p99 <= 30),
            ],
        ),
        "introspect": Row(
            "POST /oauth/introspect (access tokens)",
            ceiling_name="bare aiohttp+PyJWT req/s (1 process)",
            targets=[
                (">=60% of ceiling", lambda r: (r.ratio or 0) >= 0.60),
                ("p99<=30ms", lambda r: r.p99 <= 30),
            ],
        ),
        "bare": Row("ceiling: bare aiohttp+PyJWT endpoint", note="1 process, no database"),
        "login10": Row(
            "login (bcrypt cost 10)",
            ceiling_name="bcrypt cost 10 checks/s (all cores)",
            targets=[(">=90% of ceiling", lambda r: (r.ratio or 0) >= 0.90)],
        ),
        "login12": Row(
            "login (bcrypt cost 12)",
            ceiling_name="bcrypt cost 12 checks/s (all cores)",
            note="reported, no target",
        ),
        "no_stalls": Row(
            f"no stalls: /me ({NO_STALL_ME_CONNECTIONS} conns) in login flood",
            targets=[("p99<=50ms", lambda r: r.p99 <= 50)],
        ),
    }
    only = set(args.only.split(",")) if args.only else None
    extra: dict[str, Any] = {}
    with (
        postgres_server(Path(".rotor") / "bench-postgres") as server_url,
        fresh_database(server_url) as database_url,
    ):
        print("bench: migrating and seeding", flush=True)
        upgrade(database_url)
        seeds = Seeds(database_url, JWT_SECRET)
        seeds.grow(args.sessions)
        with rotor_server(
            database_url,
            workers=args.workers,
            jwt_secret=JWT_SECRET,
            data_dir=work,
            pool_size=args.pool_size,
            log=log,
        ) as server:
            bench = Bench(args, seeds, server)
            _warm_up(bench)
            for round_number in range(1, args.rounds + 1):
                print(f"bench: round {round_number} of {args.rounds}", flush=True)
                _round(bench, rows, only, database_url)
            if args.scale:
                extra["scale"] = _scale(bench)
            if args.memory:
                extra["memory"] = _memory(bench)
        if server.exit_code != 0:
            print(f"bench: rotor serve exited with {server.exit_code}, see {log}")
    _print_table(rows, extra)
    path = _write_json(args, rows, extra, server.exit_code, time.monotonic() - started)
    print(f"bench: results in {path}; server log in {log}")
    return 0


def _warm_up(bench: Bench) -> None:
    """Fill the pools, JIT-free but cache-warm: a second of each kind of request."""
    bench.refresh(seconds=1)
    bench.me(seconds=1)
    bench.login(10, seconds=1, connections=bench.args.wrk_threads)


def _round(bench: Bench, rows: dict[str, Row], only: set[str] | None, url: str) -> None:
    seconds = bench.args.seconds

    def wanted(name: str) -> bool:
        return only is None or name in only

    if wanted("refresh"):
        settle(url)
        first = bench.seeds.take(REFRESH_CEILING_CLIENTS)[0]
        rows["refresh"].ceilings.append(
            ceilings.refresh_transactions_per_second(url, first, REFRESH_CEILING_CLIENTS, seconds)
        )
        bench.measured(rows["refresh"], bench.refresh)
    if wanted("oauth_token"):
        # The same ceiling as refresh: both routes run one rotation engine.
        settle(url)
        first = bench.seeds.take(REFRESH_CEILING_CLIENTS)[0]
        rows["oauth_token"].ceilings.append(
            ceilings.refresh_transactions_per_second(url, first, REFRESH_CEILING_CLIENTS, seconds)
        )
        bench.measured(rows["oauth_token"], bench.oauth_token)
    if wanted("me") or wanted("introspect"):
        settle(url)
        tokens = bench.me_tokens
        with ceilings.bare_endpoint(JWT_SECRET) as (bare_url, bare_pid):
            bare = Load(bare_url, "me", tokens, connections=bench.args.connections, seconds=seconds)
            bench.measured(rows["bare"], bare.run, [bare_pid])
            ceiling = rows["bare"].runs[-1].ok_per_second
        # Introspection is a resource server's GET /v1/me: the same ceiling, measured alongside.
        for name, run in (("me", bench.me), ("introspect", bench.introspect)):
            if wanted(name):
                rows[name].ceilings.append(ceiling)
                bench.measured(rows[name], run)
    if wanted("login"):
        for rounds in (10, 12):
            settle(url)
            row = rows[f"login{rounds}"]
            row.ceilings.append(ceilings.bcrypt_per_second(rounds, seconds))
            bench.measured(row, functools.partial(bench.login, rounds))
    if wanted("no_stalls"):
        settle(url)
        bench.measured(rows["no_stalls"], bench.no_stalls)


def _scale(bench: Bench) -> dict[str, Any]:
    """Refresh p50 at the seeded size, then after growing the tables to 1,000,000 sessions."""
    small = [bench.refresh() for _ in range(bench.args.rounds)]
    before = bench.seeds.sessions
    print(f"bench: growing to {SCALE_SESSIONS:,} sessions", flush=True)
    seeding = time.monotonic()
    bench.seeds.grow(SCALE_SESSIONS)
    seeded_in = time.monotonic() - seeding
    large = [bench.refresh() for _ in range(bench.args.rounds)]
    p50_small = statistics.median(run.p50_ms for run in small)
    p50_large = statistics.median(run.p50_ms for run in large)
    return {
        "sessions": [before, SCALE_SESSIONS],
        "seed_seconds": round(seeded_in, 1),
        "small": [asdict(run) for run in small],
        "large": [asdict(run) for run in large],
        "p50_ms": [p50_small, p50_large],
        "ratio": p50_large / p50_small,
        "pass": p50_large <= 1.25 * p50_small,
    }


def _memory(bench: Bench) -> dict[str, Any]:
    """Each worker's RSS once 100k and then 200k refreshes are done (in 10-second wrk runs, each
    on fresh sessions), and the growth between the two readings."""
    steps: list[dict[str, Any]] = []
    done = errors = 0
    for target in (MEMORY_STEP, 2 * MEMORY_STEP):
        while done < target:
            run = bench.refresh(seconds=10)
            done += run.requests
            errors += run.errors
        steps.append({"requests": done, "errors": errors, "rss_mb": bench.server.rss_mb()})
        print(f"bench: memory after {done:,} requests: {steps[-1]['rss_mb']}", flush=True)
    first, second = steps[0]["rss_mb"], steps[1]["rss_mb"]
    growth = max(second[pid] / first[pid] - 1 for pid in first)
    largest = max(max(first.values()), max(second.values()))
    return {
        "steps": steps,
        "max_rss_mb": largest,
        "growth": growth,
        "pass": largest <= 100 and growth <= 0.05,
    }


def _print_table(rows: dict[str, Row], extra: dict[str, Any]) -> None:
    header = (
        f"{'scenario':<44} {'2xx req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} "
        f"{'ceiling':>8} {'ratio':>6} {'CPU us':>7}  targets"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows.values():
        if not row.runs:
            print(f"{row.name:<44} {'skipped':>9}")
            continue
        ceiling = f"{statistics.median(row.ceilings):8.0f}" if row.ceilings else f"{'':>8}"
        ratio = f"{row.ratio:6.0%}" if row.ratio is not None else f"{'':>6}"
        cpu = f"{row.cpu:7.0f}" if row.cpu is not None else f"{'':>7}"
        verdicts = ", ".join(f"{label} {'PASS' if ok else 'FAIL'}" for label, ok in row.verdicts())
        print(
            f"{row.name:<44} {row.ok_per_second:9.0f} {row.p50:7.1f} {row.p99:7.1f} "
            f"{row.errors:6d} {ceiling} {ratio} {cpu}  {verdicts or row.note}"
        )
    scale, memory = extra.get("scale"), extra.get("memory")
    if scale:
        small, large = scale["p50_ms"]
        print(
            f"{'scale: refresh p50 at 1M vs 10k sessions':<44} {large:.1f} ms vs {small:.1f} ms: "
            f"{scale['ratio']:.2f}x  <=1.25x {'PASS' if scale['pass'] else 'FAIL'}"
        )
    else:
        print(f"{'scale: refresh p50 at 1M vs 10k sessions':<44} {'skipped (--scale)':>9}")
    if memory:
        print(
            f"{'memory: worker RSS after 100k/200k requests':<44} max {memory['max_rss_mb']:.0f} "
            f"MB, growth {memory['growth']:+.1%}  <=100 MB, <=5% "
            f"{'PASS' if memory['pass'] else 'FAIL'}"
        )
    else:
        print(f"{'memory: worker RSS after 100k/200k requests':<44} {'skipped (--memory)':>9}")
    print()
    print("ceilings: medians over rounds; ratio: median of each round's scenario/ceiling;")
    print("CPU us: the server processes' CPU time per 2xx response (robust to a busy machine);")
    print("login: errors are the bounded bcrypt queue's 503s, latencies include those answers")


def _machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }


def _write_json(
    args: argparse.Namespace,
    rows: dict[str, Row],
    extra: dict[str, Any],
    server_exit_code: int | None,
    seconds: float,
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"bench-{stamp}.json"
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - informational
        capture_output=True,
        text=True,
        cwd=HERE,
        check=False,
    ).stdout.strip()
    document = {
        "when": stamp,
        "git": revision,
        "machine": _machine(),
        "options": vars(args),
        "server_exit_code": server_exit_code,
        "seconds": round(seconds, 1),
        "scenarios": {
            key: {
                "name": row.name,
                "ok_per_second": row.ok_per_second if row.runs else None,
                "p50_ms": row.p50 if row.runs else None,
                "p99_ms": row.p99 if row.runs else None,
                "errors": row.errors,
                "ceiling_name": row.ceiling_name,
                "ceilings": row.ceilings,
                "ratio": row.ratio if row.runs else None,
                "cpu_us_per_ok_response": row.cpu_us,
                "targets": dict(row.verdicts()),
                "runs": [asdict(run) for run in row.runs],
            }
            for key, row in rows.items()
        },
        **extra,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
