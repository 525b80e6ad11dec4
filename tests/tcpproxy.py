"""A TCP proxy that a test can break: put it between a server process and PostgreSQL, then make
the database unreachable in the ways a network or a crash does, and bring it back.

It runs on the test's event loop. Modes:
- "up": bytes flow both ways.
- "refuse": every open connection is cut (as when PostgreSQL dies), and the port stops
  listening, so new connections are refused.
- "reset": every open connection is cut; new connections are accepted and cut at once.
- "blackhole": nothing is cut, but no byte gets through either way, on old and new connections
  alike (a network partition: only timeouts notice it).
Going back to "up" cuts whatever the outage left half-open, as a real partition's end would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Literal

Mode = Literal["up", "refuse", "reset", "blackhole"]
_CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        """`target_host` is a host name or address, or a Unix socket folder ("/...")."""
        self._target = (target_host, target_port)
        self._mode: Mode = "up"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def _connect_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self._target
        if host.startswith("/"):  # a Unix socket folder, as libpq names it (embedded PostgreSQL)
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def start(self) -> int:
        """Listen on a free port of 127.0.0.1; returns the port."""
        await self._listen()
        return self.port

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def set_mode(self, mode: Mode) -> None:
        previous, self._mode = self._mode, mode
        if mode in ("refuse", "reset") or (mode == "up" and previous == "blackhole"):
            self._cut_all()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if mode != "refuse" and self._server is None:
            await self._listen()

    async def close(self) -> None:
        self._cut_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _cut_all(self) -> None:
        for writer in list(self._writers):
            # abort(): no orderly FIN, as when a host or process vanishes.
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._mode == "reset":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self._mode == "blackhole":
            await self._pump(reader, None)
            return
        try:
            up_reader, up_writer = await self._connect_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter | None) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await source.read(_CHUNK):
                if sink is None or self._mode == "blackhole":
                    continue  # dropped on the floor
                sink.write(data)
                await sink.drain()
        if sink is not None:
            sink.close()
