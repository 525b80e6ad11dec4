"""Requests that aiohttp's HTTP parser refuses (before any of Rotor's code runs) are logged
without the raw header that the parser's message would quote."""

from __future__ import annotations

import asyncio

import pytest
from servers import StartServer

pytestmark = pytest.mark.slow

SECRET = "SeCrEt-token-that-must-not-be-logged"


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    answer = await reader.read(65536)
    writer.close()
    return answer


async def test_parser_rejections_do_not_log_the_header(serve: StartServer) -> None:
    server = await serve()
    for header in [
        f"Authorization: Bearer {SECRET}\x01\r\n",  # a control character
        f"Authorization: Bearer {SECRET}{'x' * 40_000}\r\n",  # over the 16 KiB limit
    ]:
        request = f"GET /v1/me HTTP/1.1\r\nHost: localhost\r\n{header}\r\n".encode()
        answer = await _raw(server.port, request)
        assert answer.split(b" ", 2)[1] in (b"400", b"431")
    # The server is still serving, and logged each rejection without the header.
    async with server.client() as http, http.get("/healthz") as response:
        assert response.status == 200
    server.stop()
    logged = server.stderr()
    assert "rejected a malformed HTTP request" in logged
    assert SECRET not in logged
