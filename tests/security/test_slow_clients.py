"""Point 6: a slow client cannot hold a connection: headers or a body that do not arrive within
AUTH_REQUEST_READ_TIMEOUT seconds get the connection closed. A real `rotor serve` process with
a one-second timeout, raw sockets trickling bytes; each test waits for the server to close, and
fails if it has not within a bound far below aiohttp's own defaults (75 s keep-alive, no body
deadline at all)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import ServerProcess, start_server

from service.config import ConfigError, load_settings

TIMEOUT = "1"
# Far more than the 1 s rule plus scheduling noise, far less than what the server did without it.
GIVE_UP = 12.0
TRICKLE = 0.25  # seconds between bytes


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module: each test opens its own connections."""
    workdir: Path = tmp_path_factory.mktemp("slow-clients")
    started = asyncio.run(
        start_server(database_url, workdir, "slow", {"AUTH_REQUEST_READ_TIMEOUT": TIMEOUT})
    )
    yield started
    started.stop()


async def _closed_while_trickling(port: int, start: bytes, trickle: bytes) -> tuple[bool, bytes]:
    """Send `start`, then `trickle` a byte at a time until the server closes: (closed, what
    it answered)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GIVE_UP
    answer = b""
    try:
        writer.write(start)
        await writer.drain()
        for index in range(len(trickle) * 1000):
            with contextlib.suppress(TimeoutError):
                chunk = await asyncio.wait_for(reader.read(65536), TRICKLE)
                if not chunk:
                    return True, answer
                answer += chunk
            if loop.time() > deadline:
                return False, answer
            try:
                writer.write(trickle[index % len(trickle) : index % len(trickle) + 1])
                await writer.drain()
            except ConnectionError:
                return True, answer
        return False, answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_headers_trickled_byte_by_byte_are_cut_off(server: ServerProcess) -> None:
    closed, _ = await _closed_while_trickling(
        server.port, b"POST /v1/login HTTP/1.1\r\n", b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaa"
    )
    assert closed


async def test_a_body_trickled_byte_by_byte_is_cut_off(server: ServerProcess) -> None:
    headers = (
        b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5000\r\n\r\n"
    )
    closed, answer = await _closed_while_trickling(server.port, headers, b" ")
    assert closed
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b'"request_timeout"' in answer


async def test_a_huge_content_length_with_no_body_is_cut_off(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 99999999999\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), GIVE_UP)  # read() returns at EOF only
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer


async def test_an_idle_connection_is_closed_and_others_are_served(server: ServerProcess) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    assert await asyncio.wait_for(reader.read(), GIVE_UP) == b""  # closed by the server
    writer.close()
    async with server.client() as http, http.get("/healthz") as response:
        assert response.status == 200
    server.assert_no_unhandled_errors()


def test_the_timeout_is_a_positive_number_of_seconds() -> None:
    assert load_settings({}).http.request_read_timeout == 15.0
    assert load_settings({"AUTH_REQUEST_READ_TIMEOUT": "2.5"}).http.request_read_timeout == 2.5
    for bad in ("0", "-1", "soon", "inf"):
        with pytest.raises(ConfigError, match="AUTH_REQUEST_READ_TIMEOUT"):
            load_settings({"AUTH_REQUEST_READ_TIMEOUT": bad})
