"""Migration 0007 (point 4): existing accounts get their canonical email; look-alikes that
already exist are not guessed between: reported by `rotor migrate`, kept apart, each reachable
by its exact address, until `rotor email-collisions --keep` gives the address to one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from service import cli
from service.config import Settings
from service.db import users
from service.db.engine import async_url
from service.ops import email_collisions
from service.ops.migrate import downgrade, upgrade

OLD_ACCOUNTS = {
    "ada@example.com": uuid.UUID(int=1),
    "\uff41da@example.com": uuid.UUID(int=2),  # fullwidth a: a look-alike of ada@
    "ada@example.com\u200b": uuid.UUID(int=3),  # zero-width space: another
    "bob@example.com": uuid.UUID(int=4),
    "Cy@Example.com.": uuid.UUID(int=5),
}


async def _seed(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for email, user_id in OLD_ACCOUNTS.items():
            await conn.execute(
                'INSERT INTO "user" (id, email, password_hash, created_at, updated_at)'
                " VALUES ($1, $2, 'x', $3, $3)",
                user_id,
                email,
                datetime(2026, 1, 1, tzinfo=UTC),
            )
    finally:
        await conn.close()


async def _rows(url: str) -> dict[uuid.UUID, tuple[str, bool]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch('SELECT id, email_canonical, email_collision FROM "user"')
        return {row["id"]: (row["email_canonical"], row["email_collision"]) for row in rows}
    finally:
        await conn.close()


async def _find(url: str, email: str) -> Any:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.connect() as conn:
            found = await users.find_user_by_email(conn, email)
            return None if found is None else found.id
    finally:
        await engine.dispose()


async def _insert(url: str, email: str) -> bool:
    engine = create_async_engine(async_url(url))
    try:
        async with engine.begin() as conn:
            now = datetime.now(UTC)
            return await users.insert_user(conn, uuid.uuid4(), email, "x", now)
    finally:
        await engine.dispose()


@pytest.fixture
def migrated(create_database: Callable[[], str]) -> str:
    url = create_database()
    upgrade(url)
    downgrade(url, "0006")
    asyncio.run(_seed(url))
    upgrade(url)
    return url


def test_canonical_forms_are_computed_and_collisions_flagged(migrated: str) -> None:
    rows = asyncio.run(_rows(migrated))
    for old in ("ada@example.com", "\uff41da@example.com", "ada@example.com\u200b"):
        assert rows[OLD_ACCOUNTS[old]] == ("ada@example.com", True)
    assert rows[OLD_ACCOUNTS["bob@example.com"]] == ("bob@example.com", False)
    assert rows[OLD_ACCOUNTS["Cy@Example.com."]] == ("cy@example.com", False)


def test_each_colliding_account_stays_reachable_by_its_own_address(migrated: str) -> None:
    assert asyncio.run(_find(migrated, "ada@example.com")) == OLD_ACCOUNTS["ada@example.com"]
    assert asyncio.run(_find(migrated, "ADA@example.com")) == OLD_ACCOUNTS["ada@example.com"]
    assert (
        asyncio.run(_find(migrated, "\uff41da@example.com")) == OLD_ACCOUNTS["\uff41da@example.com"]
    )
    # A look-alike spelling nobody registered reaches no one yet: nothing is guessed.
    assert asyncio.run(_find(migrated, "ada@example.com.")) is None
    # And cannot be registered as a third look-alike.
    assert asyncio.run(_insert(migrated, "ADA@example.com.")) is False
    assert asyncio.run(_find(migrated, "cy@example.com")) == OLD_ACCOUNTS["Cy@Example.com."]


def test_rotor_migrate_reports_the_groups_and_the_command(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli.migrate(Settings(database_url=migrated), sql_only=False)
    out = capsys.readouterr().out
    assert "ada@example.com" in out
    for old in ("ada@example.com", "\uff41da@example.com", "ada@example.com\u200b"):
        assert str(OLD_ACCOUNTS[old]) in out
    assert str(OLD_ACCOUNTS["bob@example.com"]) not in out
    assert email_collisions.RESOLVE_COMMAND in out


def test_keeping_one_gives_it_every_look_alike(
    migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ada = OLD_ACCOUNTS["ada@example.com"]
    email_collisions.run(migrated, ada, print)
    assert asyncio.run(_find(migrated, "ada@example.com.")) == ada
    # The others still sign in with their exact address.
    fullwidth = OLD_ACCOUNTS["\uff41da@example.com"]
    assert asyncio.run(_find(migrated, "\uff41da@example.com")) == fullwidth
    with pytest.raises(email_collisions.ResolveError):
        email_collisions.keep(migrated, fullwidth)  # the address has its owner now
    assert "now owns ada@example.com" in capsys.readouterr().out


def test_downgrade_and_upgrade_again(migrated: str) -> None:
    downgrade(migrated, "0006")
    upgrade(migrated)
    assert len(asyncio.run(_rows(migrated))) == len(OLD_ACCOUNTS)
