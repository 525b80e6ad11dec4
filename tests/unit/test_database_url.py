"""DATABASE_URL with one host or several, in libpq's form or SQLAlchemy's; failover errors."""

from __future__ import annotations

import asyncpg
import pytest
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from service.config import ConfigError, load_settings
from service.db.engine import async_url
from service.db.failover import is_failover_error
from service.db.url import parse_database_url
from service.web.middlewares import _is_unavailable

LIBPQ = "postgresql://rotor:s%40cret@db1:5432,db2:5433/rotor?target_session_attrs=read-write"


def test_libpq_host_list_is_split_into_nodes() -> None:
    address = parse_database_url(LIBPQ)
    assert address.hosts == (("db1", 5432), ("db2", 5433))
    assert (address.user, address.password, address.database) == ("rotor", "s@cret", "rotor")
    assert address.target_session_attrs == "read-write"
    assert address.describe() == "db1:5432,db2:5433/rotor"  # no credentials in messages


def test_sqlalchemy_host_query_forms_give_the_same_nodes() -> None:
    repeated = parse_database_url("postgresql+asyncpg://rotor@/rotor?host=db1:5432&host=db2:5433")
    paired = parse_database_url("postgresql://rotor@/rotor?host=db1,db2&port=5432,5433")
    assert repeated.hosts == paired.hosts == (("db1", 5432), ("db2", 5433))


def test_several_hosts_default_to_the_writable_one() -> None:
    assert parse_database_url("postgresql://u@a,b/db").target_session_attrs == "read-write"
    assert parse_database_url("postgresql://u@a,b/db").hosts == (("a", 5432), ("b", 5432))


def test_each_node_gets_its_own_dsn_with_the_other_parameters() -> None:
    address = parse_database_url("postgresql://u@a:1,[::1]:2/db?sslmode=require")
    assert address.node_dsn("::1", 2) == (
        "postgresql://u@[::1]:2/db?sslmode=require&target_session_attrs=read-write"
    )


def test_multi_host_url_becomes_sqlalchemys_form() -> None:
    url = async_url(LIBPQ)
    assert url.startswith("postgresql+asyncpg://rotor:s%40cret@/rotor?host=db1%3A5432&host=db2")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:5432/postgres",
        "postgresql://rotor@/rotor?host=/srv/run&port=5544",  # the embedded server's socket
    ],
)
def test_single_host_urls_are_unchanged(url: str) -> None:
    assert not parse_database_url(url).multi_host
    # What SQLAlchemy's own parser made of it before several hosts were supported.
    before = make_url(url).set(drivername="postgresql+asyncpg")
    assert async_url(url) == before.render_as_string(hide_password=False)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://a,b/db", "postgresql://"),
        ("postgresql://u@a:1,b:x/db", "host[:port] entries"),
        ("postgresql://u@a:1,b:70000/db", "ports between 1 and 65535"),
        ("postgresql://u@a,b/db?target_session_attrs=read-only", "target_session_attrs"),
        ("postgresql://u@a/db?host=b", "not both"),
        ("postgresql://u@/db?host=a,b&port=1", "as many ports"),
    ],
)
def test_bad_urls_stop_start_up_naming_the_variable(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings({"DATABASE_URL": url})
    message = str(raised.value)
    assert message.startswith("DATABASE_URL: invalid value") and expected in message
    assert "u@" not in message


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.ReadOnlySQLTransactionError("cannot execute UPDATE in a read-only transaction"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TargetServerAttributeNotMatched("None of the hosts match"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation is in progress"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
)
def test_failover_errors_are_unavailable_not_bugs(error: BaseException) -> None:
    wrapped = sqlalchemy.exc.InternalError("UPDATE ...", None, error)  # as SQLAlchemy raises it
    assert is_failover_error(error) and is_failover_error(wrapped)
    assert _is_unavailable(wrapped)


def test_read_only_text_without_sqlstate_is_a_failover() -> None:
    error = RuntimeError("cannot execute INSERT in a read-only transaction")
    assert is_failover_error(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.UndefinedTableError('relation "x" does not exist'),
        ValueError("a bug"),
    ],
)
def test_other_errors_are_not_failovers(error: BaseException) -> None:
    assert not is_failover_error(error)
