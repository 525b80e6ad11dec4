"""The command line as a real process: configuration errors, migrate, serve's schema check."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def _rotor(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "DATABASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_invalid_configuration_stops_with_one_line_naming_the_variable() -> None:
    for command in ["serve", "migrate"]:
        result = _rotor(
            command, env={"AUTH_PORT": "not-a-port", "DATABASE_URL": "postgresql://x@127.0.0.1:9/x"}
        )
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "AUTH_PORT" in lines[0]


def test_migrate_then_serve_refuses_a_schema_behind(create_database: Callable[[], str]) -> None:
    url = create_database()
    env = {"DATABASE_URL": url, "AUTH_JWT_SECRET": "s" * 32, "AUTH_PORT": "1"}
    refused = _rotor("serve", env=env)
    assert refused.returncode != 0
    assert "rotor migrate" in refused.stderr and "Traceback" not in refused.stderr
    for _ in range(2):  # idempotent
        migrated = _rotor("migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr


def test_keys_generate_writes_a_usable_pem(tmp_path: Path) -> None:
    out = tmp_path / "signing.pem"
    result = _rotor("keys", "generate", "--alg", "EdDSA", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert out.stat().st_mode & 0o777 == 0o600


def test_database_url_password_is_not_printed() -> None:
    unreachable = "postgresql://rotor:hunter2-secret@127.0.0.1:9/rotor"  # nothing listens on 9
    result = _rotor("migrate", env={"DATABASE_URL": unreachable})
    assert result.returncode != 0
    assert "hunter2-secret" not in result.stderr + result.stdout
