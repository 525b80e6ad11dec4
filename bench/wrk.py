"""Driving wrk (Debian's package) with the Lua scenarios in bench/lua/."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non2xx: int
    status_503: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    sample_error: str = ""

    @property
    def ok_per_second(self) -> float:
        """2xx responses per second: errors answered fast must not count as throughput."""
        return (self.requests - self.non2xx) / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def ensure_wrk() -> str:
    """The wrk binary, installed with apt-get (after apt-get update) if it is missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: wrk is missing, installing Debian's package", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["update", "-qq"], ["install", "-y", "-qq", "wrk"]):
        subprocess.run(  # noqa: S603 - fixed arguments
            ["apt-get", *command],  # noqa: S607 - apt-get from PATH, as a person would run it
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install wrk")
    return found


class Load:
    """One wrk run in the background: start(), then result() waits for it."""

    def __init__(
        self,
        url: str,
        scenario: str,
        data: list[str],
        *,
        connections: int,
        seconds: float,
        threads: int = 2,
        timeout_s: int = 30,
    ) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="rotor-wrk-"))
        script = self._dir / f"{scenario}.lua"
        script.write_text((LUA / "common.lua").read_text() + (LUA / f"{scenario}.lua").read_text())
        (self._dir / "data").write_text("\n".join(data) + "\n")
        self._result = self._dir / "result.json"
        self._args = [
            ensure_wrk(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script),
            url,
        ]
        self._env = {
            **os.environ,
            "BENCH_RESULT": str(self._result),
            "BENCH_DATA": str(self._dir / "data"),
            "BENCH_THREADS": str(threads),
        }
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Load:
        self._process = subprocess.Popen(  # noqa: S603 - wrk with our own arguments
            self._args, env=self._env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        return self

    def result(self) -> WrkResult:
        assert self._process is not None
        output, _ = self._process.communicate()
        try:
            if self._process.returncode != 0 or not self._result.exists():
                raise RuntimeError(f"wrk failed ({self._process.returncode}): {output.strip()}")
            raw = json.loads(self._result.read_text())
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
        return WrkResult(
            requests=raw["requests"],
            seconds=raw["duration_us"] / 1e6,
            non2xx=raw["non2xx"],
            status_503=raw["status_503"],
            socket_errors=raw["connect_errors"]
            + raw["read_errors"]
            + raw["write_errors"]
            + raw["timeouts"],
            p50_ms=raw["p50_us"] / 1000,
            p90_ms=raw["p90_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            sample_error=raw.get("sample_error", ""),
        )

    def run(self) -> WrkResult:
        return self.start().result()
