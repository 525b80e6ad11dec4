"""Alembic, driven from code: upgrade to head, and compare a database's revision with the code's.

The configuration is built here, not read from alembic.ini, so `rotor migrate` works from an
installed wheel in any working directory: the migrations are the package `rotor_migrations`
(the repository's top-level `migrations/` folder, shipped in the wheel under that name).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_PACKAGE = "rotor_migrations"
# In a checkout that was not installed (PYTHONPATH=.), the folder beside the `service` package.
_SOURCE_TREE = Path(__file__).resolve().parents[2] / "migrations"


def script_location() -> str:
    """The folder holding env.py and versions/, wherever Rotor is installed."""
    try:
        folder = resources.files(MIGRATIONS_PACKAGE)
    except ModuleNotFoundError:
        return str(_SOURCE_TREE)
    # A wheel installs it as plain files; Alembic needs a real folder to read revisions from.
    return str(Path(str(folder)))


def alembic_config(database_url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", script_location())
    config.set_main_option("path_separator", "os")
    if database_url is not None:
        # env.py prefers this over DATABASE_URL (it is how `rotor migrate` passes the embedded URL).
        config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, sql_only: bool = False) -> None:
    """Bring the database to the newest schema (or print that SQL when `sql_only`)."""
    command.upgrade(alembic_config(database_url), "head", sql=sql_only)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(conn: AsyncConnection) -> str | None:
    """The database's Alembic revision, None when it has none (plain SQL: /readyz runs this,
    and Alembic's MigrationContext would log on every call)."""
    if (await conn.execute(text("SELECT to_regclass('alembic_version')"))).scalar() is None:
        return None
    revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    return None if revision is None else str(revision)
