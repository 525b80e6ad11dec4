"""Request headers up to 16 KiB in total are served under the contract's rules, whether they
are one long header or many short ones; far larger ones are refused by the HTTP layer."""

from __future__ import annotations

import asyncio

from helpers import Client, bearer, error_of, signed_in

KIB = 1024


async def test_one_fifteen_kibibyte_header_is_served(client: Client) -> None:
    tokens = await signed_in(client)
    response = await client.get("/v1/me", headers={"X-Padding": "p" * (15 * KIB), **bearer(tokens)})
    assert response.status == 200, await response.text()
    response = await client.get("/v1/me", headers={"Authorization": "Bearer " + "A" * (15 * KIB)})
    assert response.status == 401
    assert await error_of(response) == "invalid_token"


async def test_many_short_headers_totalling_sixteen_kibibytes_are_served(client: Client) -> None:
    tokens = await signed_in(client)
    many = {f"X-Pad-{i:03d}": "p" * 40 for i in range(300)}
    assert sum(len(name) + len(value) + 4 for name, value in many.items()) < 16 * KIB
    response = await client.get("/v1/me", headers={**many, **bearer(tokens)})
    assert response.status == 200, await response.text()
    response = await client.get("/v1/me", headers=many)
    assert response.status == 401
    assert await error_of(response) == "invalid_token"


async def test_headers_far_over_the_limit_are_refused(client: Client) -> None:
    assert client.port is not None
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET /v1/me HTTP/1.1\r\nHost: localhost\r\nX-Padding: "
        + b"p" * (40 * KIB)
        + b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    writer.close()
    assert status_line.split(b" ")[1] in (b"400", b"431")
