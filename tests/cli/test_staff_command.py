"""`rotor staff add|remove|list` against this run's database."""

from __future__ import annotations

import os
import subprocess
import sys

import asyncpg
from servers import ROOT


def _staff(database_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "ROTOR_"))}
    return subprocess.run(
        [sys.executable, "-m", "service", "staff", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "DATABASE_URL": database_url, "AUTH_BCRYPT_ROUNDS": "4"},
        check=False,
    )


async def test_add_list_remove(database_url: str, db: asyncpg.Connection) -> None:
    added = _staff(
        database_url, "add", "Sam@Support.example", "--role", "support", stdin="a good password\n"
    )
    assert added.returncode == 0, added.stderr
    stored = await db.fetchrow("SELECT email, role, password_hash FROM staff")
    assert stored["role"] == "support" and "a good password" not in stored["password_hash"]
    again = _staff(
        database_url, "add", "sam@support.example", "--role", "admin", stdin="a good password\n"
    )
    assert again.returncode == 1 and "exists already" in again.stderr
    short = _staff(database_url, "add", "x@support.example", "--role", "admin", stdin="short\n")
    assert short.returncode == 1 and "12 to 256" in short.stderr
    listed = _staff(database_url, "list")
    assert listed.stdout.startswith("Sam@Support.example\tsupport\t")
    assert _staff(database_url, "remove", "sam@support.example").returncode == 0
    assert await db.fetchval("SELECT count(*) FROM staff") == 0
    assert _staff(database_url, "remove", "sam@support.example").returncode == 1
    assert _staff(database_url, "add", "x@y.z", "--role", "root").returncode == 2
