"""What a primary's failover looks like from a client, and how the pool gets past it.

During a failover the server a connection was made to stops taking writes: it dies (the socket
is reset), it is shut down by the failover manager (SQLSTATE 57P01 admin_shutdown), or it keeps
running as a standby and refuses writes (25006 read_only_sql_transaction, "cannot execute ...
in a read-only transaction"). None of these is a bug: the request answers 503 and the
connection is dropped, so the next checkout connects again, to whichever node takes writes now.

With several hosts, connections are made here, one node at a time, each within the connect
timeout (asyncpg spends one timeout on the whole list, so a node that hangs would starve the
others), starting with the node that took writes last, and keeping a node only if it matches
`target_session_attrs` (read-write by default).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from service.db.url import DatabaseAddress, parse_database_url

# SQLSTATEs that say "this server does not take our writes any more", not "this query is wrong":
# class 08 (connection exception), 25006 (read-only transaction), 57P01-57P03 (admin or crash
# shutdown, cannot connect now: a node being demoted or restarted).
_FAILOVER_STATES = ("25006", "57P01", "57P02", "57P03")
_FAILOVER_CLASSES = ("08",)
_READ_ONLY_TEXT = "in a read-only transaction"
# TargetServerAttributeNotMatched is one of these (asyncpg.InternalClientError).


def _sqlstate(exc: BaseException) -> str:
    state = getattr(exc, "sqlstate", None)
    return state if isinstance(state, str) else ""


def is_failover_error(exc: BaseException) -> bool:
    """True if `exc`, or an error it was raised from, is one a failover causes."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = _sqlstate(current)
        if state in _FAILOVER_STATES or state.startswith(_FAILOVER_CLASSES):
            return True
        if isinstance(current, ConnectionError | asyncpg.InterfaceError):
            return True
        # Client-side: no node matched target_session_attrs; or a connection left mid-operation
        # when its server went away ("cannot switch to state ...; another operation is in
        # progress", seen during switchovers). The connection is dropped either way.
        if isinstance(current, asyncpg.InternalClientError):
            return True
        if _READ_ONLY_TEXT in str(current) and "cannot execute" in str(current):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


async def takes_writes(conn: AsyncConnection) -> bool:
    """Whether the server behind `conn` takes writes now (not a standby, not read-only)."""
    value = (await conn.execute(text("SHOW transaction_read_only"))).scalar()
    return value == "off"


def drop_connections_on_failover(engine: AsyncEngine) -> None:
    """A statement run through SQLAlchemy that fails with a failover error counts as a lost
    connection: SQLAlchemy then drops it and every other connection the pool had opened before
    (they all reached the same, former, primary)."""

    @event.listens_for(engine.sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        if is_failover_error(context.original_exception):
            context.is_disconnect = True


Connect = Callable[..., Awaitable[asyncpg.Connection]]


def node_connector(address: DatabaseAddress, timeout: float) -> Connect:
    """An asyncpg connect function trying every node of `address` in turn."""
    order = list(address.hosts)

    async def connect(**kwargs: Any) -> asyncpg.Connection:
        kwargs.pop("timeout", None)
        last: BaseException | None = None
        for host, port in list(order):
            try:
                async with asyncio.timeout(timeout):
                    conn = await asyncpg.connect(address.node_dsn(host, port), **kwargs)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                last = exc
                continue
            except asyncpg.TargetServerAttributeNotMatched as exc:  # a standby
                last = exc
                continue
            # The next connection tries this node first: after a failover, one slow attempt.
            order.remove((host, port))
            order.insert(0, (host, port))
            return conn
        assert last is not None
        raise last

    return connect


def engine_options(database_url: str, connect_args: dict[str, Any]) -> dict[str, Any]:
    """create_async_engine's connection options for `database_url`: asyncpg's own arguments for
    one host; for several, a creator that connects node by node (connect_args go to each)."""
    address = parse_database_url(database_url)
    if not address.multi_host:
        return {"connect_args": connect_args}
    args = dict(connect_args)
    timeout = float(args.pop("timeout", 10.0))
    # These two belong to SQLAlchemy's adapter, not to asyncpg.connect.
    adapter = {
        "prepared_statement_cache_size": 0 if args.get("statement_cache_size") == 0 else 100,
        "prepared_statement_name_func": args.pop("prepared_statement_name_func", None),
    }
    dbapi: Any = PGDialect_asyncpg.import_dbapi()  # type: ignore[no-untyped-call]
    connect = node_connector(address, timeout)

    def creator() -> Any:
        return dbapi.connect(async_creator_fn=connect, **adapter, **args)

    return {"creator": creator}
