"""Rotor as a package: the wheel carries the migrations and the OpenAPI document, `rotor migrate`
needs no alembic.ini nor the checkout as working directory, and `alembic upgrade head` still
works from the repository. (.ci/wheel-check installs the wheel into a fresh virtualenv and
serves from it; that needs the package index, so it is not repeated here.)"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from service.ops.migrate import alembic_config, head_revision

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _environment(**extra: str) -> dict[str, str]:
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AUTH_", "ROTOR_")) and name != "DATABASE_URL"
    }
    return {**inherited, **extra}


async def _revision(url: str) -> str | None:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval("SELECT version_num FROM alembic_version")
        return None if value is None else str(value)
    finally:
        await conn.close()


@pytest.mark.slow
def test_the_wheel_ships_every_migration_and_the_openapi_document(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("rotor-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = sorted((ROOT / "migrations" / "versions").glob("[0-9]*.py"))
    assert revisions
    expected = {
        "rotor_migrations/env.py",
        "rotor_migrations/script.py.mako",
        "service/web/openapi.yaml",
        "service/cli.py",
        *(f"rotor_migrations/versions/{path.name}" for path in revisions),
    }
    assert expected <= names, expected - names


def test_the_alembic_configuration_needs_no_ini_file() -> None:
    config = alembic_config()
    assert config.config_file_name is None
    location = Path(config.get_main_option("script_location") or "")
    assert (location / "env.py").is_file()
    assert head_revision() is not None


def test_rotor_migrate_runs_from_any_working_directory(
    create_database: Callable[[], str], tmp_path: Path
) -> None:
    url = create_database()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run(
        [str(VENV_BIN / "rotor"), "migrate"],
        cwd=elsewhere,
        env=_environment(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(_revision(url)) == head_revision()
    assert not (elsewhere / "alembic.ini").exists()


def test_alembic_upgrade_head_still_works_from_the_repository(
    create_database: Callable[[], str],
) -> None:
    alembic = shutil.which("alembic", path=str(VENV_BIN))
    assert alembic is not None
    url = create_database()
    result = subprocess.run(
        [alembic, "upgrade", "head"],
        cwd=ROOT,
        env=_environment(DATABASE_URL=url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert asyncio.run(_revision(url)) == head_revision()
