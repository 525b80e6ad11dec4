"""The pool against a server that stops taking writes, and a host list whose first node is dead
or hangs: a connection to a read-only server is dropped (503 with Retry-After, never 500) and
the next request writes on a fresh one; with several hosts each node gets its own connect
timeout, so a node that swallows packets does not starve the next."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from conftest import MakeClient
from helpers import refresh, signed_in
from servers import free_port
from sqlalchemy.engine import make_url
from tcpproxy import TcpProxy

from service.web.appkeys import ENGINE


async def _make_pooled_connection_read_only(client: object) -> None:
    """What a demoted primary looks like to a pooled connection: writes are refused."""
    engine = client.app[ENGINE]  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        await conn.exec_driver_sql("SET SESSION default_transaction_read_only = on")
        await conn.commit()


async def test_write_on_a_read_only_connection_is_503_then_served_on_a_new_one(
    make_client: MakeClient,
) -> None:
    client = await make_client(db_pool_size=1)
    tokens = await signed_in(client)
    await _make_pooled_connection_read_only(client)
    refused = await refresh(client, tokens["refresh_token"])
    assert refused.status == 503
    assert (await refused.json())["error"] == "service_unavailable"
    assert refused.headers["Retry-After"] == "1"
    # The same token again: the read-only connection is gone, the rotation happens now.
    served = await refresh(client, tokens["refresh_token"])
    assert served.status == 200, await served.text()


async def test_readyz_is_503_on_a_read_only_server_then_ready(make_client: MakeClient) -> None:
    client = await make_client(db_pool_size=1)
    await _make_pooled_connection_read_only(client)
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/readyz")).status == 200


@pytest.fixture
async def blackhole() -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy("127.0.0.1", free_port())
    await proxy.start()
    await proxy.set_mode("blackhole")
    yield proxy
    await proxy.close()


def _hosts(database_url: str, *first: str) -> str:
    url = make_url(database_url)
    node = f"{url.host}:{url.port or 5432}"
    hosts = ",".join([*first, node])
    return f"postgresql://{url.username}@{hosts}/{url.database}?target_session_attrs=read-write"


async def test_dead_and_hanging_first_hosts_are_skipped(
    make_client: MakeClient, database_url: str, blackhole: TcpProxy
) -> None:
    if make_url(database_url).host is None:
        pytest.skip("the embedded server listens on a Unix socket only")
    url = _hosts(database_url, f"127.0.0.1:{free_port()}", f"127.0.0.1:{blackhole.port}")
    client = await make_client(database_url=url, db_connect_timeout=1.0, db_pool_size=2)
    tokens = await signed_in(client)
    assert (await refresh(client, tokens["refresh_token"])).status == 200
    assert (await client.get("/readyz")).status == 200
