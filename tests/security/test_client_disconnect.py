"""Point 5: a client that hangs up in mid-request is its own outcome (status 499 in the access
log and the metrics, logged at info), never "database unavailable" and a 503: anyone could fake
outage alerts by sending half a body and closing. A real `rotor serve` process (the in-process
test server cancels handlers on disconnect, which production aiohttp does not)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from servers import ServerProcess, StartServer


async def _half_a_login(port: int) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n"
        b'{"email":'
    )
    await writer.drain()
    writer.close()
    await writer.wait_closed()


def _lines(server: ServerProcess) -> list[dict[str, Any]]:
    lines = []
    for raw in server.stderr().splitlines():
        if raw.startswith("{"):
            lines.append(orjson.loads(raw))
    return lines


async def _access_line(server: ServerProcess, route: str) -> dict[str, Any]:
    for _ in range(500):
        for line in _lines(server):
            if line["logger"] == "rotor.access" and line.get("route") == route:
                return line
        await asyncio.sleep(0.02)
    raise AssertionError(f"no access line for {route}:\n{server.stderr()}")


async def test_a_disconnect_is_499_at_info_not_a_database_outage(serve: StartServer) -> None:
    server = await serve(AUTH_METRICS="true")
    await _half_a_login(server.port)
    line = await _access_line(server, "/v1/login")
    assert line["status"] == 499
    messages = [(entry["level"], entry["message"]) for entry in _lines(server)]
    assert ("info", "client disconnected on POST /v1/login") in messages
    assert not any("database unavailable" in message for _, message in messages), messages
    assert not any(level == "error" for level, _ in messages), messages
    async with server.client() as http, http.get("/metrics") as response:
        scrape = await response.text()
    requests = [row for row in scrape.splitlines() if row.startswith("rotor_http_requests_total{")]
    assert any('route="/v1/login"' in row and 'status="499"' in row for row in requests), requests
    assert not any('status="503"' in row for row in requests), requests
    server.assert_no_unhandled_errors()
