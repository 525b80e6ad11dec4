"""Alembic environment (the async template): the URL comes from the same settings as the server."""

from __future__ import annotations

import asyncio
import logging
import time

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from service.config import load_settings
from service.db.engine import async_url, create_command_engine
from service.db.models import metadata

config = context.config
target_metadata = metadata
logger = logging.getLogger("alembic.env")

# How often a waiting `rotor migrate` asks for the lock again.
LOCK_POLL_SECONDS = 0.5
# Key of the session-level advisory lock that serializes `rotor migrate` runs on one database
# ("rotor" in ASCII). Session-level, not transaction-level: a migration that commits midway
# (CREATE INDEX CONCURRENTLY in an autocommit block) must not let a second job in.
MIGRATION_LOCK_KEY = 0x726F746F72
CONNECT_TIMEOUT = 10


def _database_url() -> str:
    url = config.attributes.get("database_url") or load_settings().database_url
    if not url:
        raise SystemExit("DATABASE_URL is not set: nothing to migrate (rotor migrate needs it)")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(
        url=async_url(_database_url()),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def _run_locked(connection: Connection) -> None:
    """Migrate while holding the lock: parallel deploy jobs run one after the other, and each
    one after the first finds the schema at head (Alembic reads the version after the lock)."""
    lock = {"key": MIGRATION_LOCK_KEY}
    default_isolation = connection.default_isolation_level
    connection.commit()  # whatever reading the connection's state began
    # Poll for the lock with short statements outside any transaction: a migration that builds
    # an index CONCURRENTLY waits for every running transaction, so a waiter blocked inside
    # pg_advisory_lock() (itself a transaction) would deadlock it.
    connection.execution_options(isolation_level="AUTOCOMMIT")
    try_lock = text("SELECT pg_try_advisory_lock(:key)")
    if not connection.execute(try_lock, lock).scalar():
        logger.info("another migration is running on this database; waiting for it to finish")
        while not connection.execute(try_lock, lock).scalar():
            time.sleep(LOCK_POLL_SECONDS)
    connection.commit()  # ends SQLAlchemy's (autocommit) transaction object, not the lock
    connection.execution_options(isolation_level=default_isolation)  # Alembic's transactions
    _run(connection)
    # On failure the connection is closed instead (NullPool), which releases the lock too.
    connection.commit()
    connection.execution_options(isolation_level="AUTOCOMMIT")
    connection.execute(text("SELECT pg_advisory_unlock(:key)"), lock)
    connection.commit()


async def run_async_migrations() -> None:
    # One host or several (the first that takes writes), each tried within the timeout.
    engine = create_command_engine(_database_url(), CONNECT_TIMEOUT)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_locked)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # a caller shares its own connection (tests)
        _run(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
