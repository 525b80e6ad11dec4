"""The async engine: one pool per process, created and disposed by the app's cleanup_ctx."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from service.config import Settings
from service.db import failover
from service.db.url import parse_database_url


def async_url(database_url: str) -> str:
    """The SQLAlchemy asyncpg URL for a libpq-style `postgresql://` URL (one host or several)."""
    address = parse_database_url(database_url)
    if address.multi_host:
        return address.sqlalchemy_url()
    url = make_url(database_url)
    return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_command_engine(database_url: str, connect_timeout: float) -> AsyncEngine:
    """An engine without a pool for one-shot commands (`rotor migrate`, the schema check)."""
    from sqlalchemy import pool

    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    engine = create_async_engine(
        async_url(database_url),
        poolclass=pool.NullPool,
        **failover.engine_options(database_url, connect_args),
    )
    failover.drop_connections_on_failover(engine)
    return engine


CLIENT_CHECK_INTERVAL_MS = 1000


def _unique_statement_name() -> str:
    return f"__rotor_{uuid.uuid4().hex}__"


def create_engine(settings: Settings, database_url: str) -> AsyncEngine:
    statement_timeout_ms = int(settings.db_statement_timeout * 1000)
    url = make_url(async_url(database_url))
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "command_timeout": settings.db_statement_timeout,
        "server_settings": {
            "application_name": "rotor",
            "statement_timeout": str(statement_timeout_ms),
            # A transaction left open by a stuck client must not hold row locks for long.
            "idle_in_transaction_session_timeout": str(statement_timeout_ms * 3),
            # A statement whose client has gone (a worker killed or shut down while it waited on
            # a lock) is aborted within a second instead of running, and committing, later.
            # PostgreSQL 14+.
            "client_connection_check_interval": str(CLIENT_CHECK_INTERVAL_MS),
        },
    }
    if not settings.db_prepared_statement_cache:
        # PgBouncer in transaction mode gives each transaction any server connection: a named
        # statement cached for one would be missing, or clash, on another. So no caches, and a
        # unique name per statement (prepared and run inside one transaction, so one backend).
        connect_args["statement_cache_size"] = 0
        connect_args["prepared_statement_name_func"] = _unique_statement_name
        url = url.update_query_dict({"prepared_statement_cache_size": "0"})
        # PgBouncer refuses unknown startup parameters: set these timeouts on the database role.
        connect_args["server_settings"] = {"application_name": "rotor"}
    engine = create_async_engine(
        url,
        **failover.engine_options(database_url, connect_args),
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # Errors and logs must never carry bound values: they include verifiers and hashes.
        hide_parameters=True,
        # A request waits this long for a free connection before answering 503: when the
        # database hangs, every pooled connection is stuck and waiting longer only piles up
        # requests that will fail anyway.
        pool_timeout=settings.db_connect_timeout,
    )
    failover.drop_connections_on_failover(engine)
    return engine
