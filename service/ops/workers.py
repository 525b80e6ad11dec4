"""Serving: one process, or N worker processes sharing one port (SO_REUSEPORT) under a supervisor.

Each worker builds its own app (engine, pool, bcrypt threads) after the fork, so nothing with a
socket or a thread crosses it; the kernel spreads new connections over the workers' listeners.
The parent only supervises: it forwards SIGTERM/SIGINT once to every worker, waits a bounded time
for them to finish their in-flight requests, and turns a worker's unexpected death into stopping
the others and a non-zero exit, so that a process manager restarts the whole service.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping
from multiprocessing.connection import wait
from types import FrameType
from typing import Any

from aiohttp import web
from aiohttp.web_runner import GracefulExit

logger = logging.getLogger("rotor")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# On top of the workers' own shutdown timeout: closing the pool and the bcrypt threads.
STOP_MARGIN = 5.0


def _stop_once(loop: asyncio.AbstractEventLoop) -> None:
    """The first SIGTERM/SIGINT starts a graceful shutdown; later ones are ignored, so that a
    signal sent to the whole group and the supervisor's forwarded one cannot cut it short."""
    fired = False

    def stop() -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise GracefulExit()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop)


async def _freeze_startup_heap(_app: web.Application) -> None:
    """Move everything alive once the app has started (modules, the engine, the keys: about
    100,000 objects) out of the collector's reach. A full collection otherwise walks all of them
    and stops every request on this worker for tens of milliseconds (62 ms measured on the bench
    machine), which is a p99 of its own; afterwards it walks only what requests left behind."""
    gc.collect()
    gc.freeze()


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    shutdown_timeout: float,
    handler_args: Mapping[str, Any],
    reuse_port: bool = False,
) -> None:
    """Serve `app` in this process until SIGTERM/SIGINT, then finish in-flight requests."""
    # asyncio's own loop: uvloop measured no faster here and with a far worse p99 (see
    # docs/performance.md).
    loop = asyncio.new_event_loop()
    _stop_once(loop)
    app.on_startup.append(_freeze_startup_heap)  # after the app's own startup (cleanup_ctx)
    # Signals blocked by the supervisor around the fork are delivered from here on.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    web.run_app(
        app,
        host=host,
        port=port,
        loop=loop,
        reuse_port=reuse_port,
        handle_signals=False,
        # RequestHandler keywords: passed as `handler_args=` they made aiohttp drop every custom
        # setting with a warning (header limits, and access_log=None: it logged every request).
        **handler_args,
        shutdown_timeout=shutdown_timeout,
        access_log=None,
        print=lambda message: logger.info("%s", message.strip()),
    )


def _worker_main(target: Callable[[], None]) -> None:
    # The parent's handlers were inherited by the fork; the worker's loop installs its own.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_DFL)
    target()


class WorkerFailed(Exception):
    """A worker exited on its own, or did not stop in time."""


def supervise(
    count: int,
    target: Callable[[], None],
    stop_timeout: float,
    on_exit: Callable[[int], None] | None = None,
) -> None:
    """Run `target` in `count` forked workers until SIGTERM/SIGINT; return once all have exited
    cleanly, raise WorkerFailed if one died unexpectedly or had to be killed. `on_exit` is told
    each worker's pid once it has ended."""
    context = multiprocessing.get_context("fork")
    requested: list[int] = []
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        requested.append(signum)
        with contextlib.suppress(BlockingIOError):
            os.write(wake_write, b"\0")

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    workers: list[multiprocessing.process.BaseProcess] = []
    failure: str | None = None
    try:
        # Blocked across the forks: a signal arriving now waits for the worker's own handler.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            for number in range(count):
                worker = context.Process(
                    target=_worker_main, args=(target,), name=f"rotor-worker-{number}"
                )
                worker.start()
                workers.append(worker)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        logger.info("started %d workers: %s", count, " ".join(str(w.pid) for w in workers))
        while not requested:
            wait([wake_read, *(worker.sentinel for worker in workers)])
            dead = [worker for worker in workers if worker.exitcode is not None]
            if dead and not requested:
                failure = f"worker {dead[0].pid} exited with code {dead[0].exitcode}"
                logger.error("%s: stopping the others", failure)
                break
        failure = _stop(workers, stop_timeout) or failure
        if on_exit is not None:
            for ended in workers:
                if ended.pid is not None:
                    on_exit(ended.pid)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        os.close(wake_read)
        os.close(wake_write)
    if failure is not None:
        raise WorkerFailed(failure)


def _stop(workers: list[multiprocessing.process.BaseProcess], timeout: float) -> str | None:
    """SIGTERM each live worker once and wait; SIGKILL what is left at the deadline."""
    for worker in workers:
        if worker.exitcode is None and worker.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout + STOP_MARGIN
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
    failure = None
    for worker in workers:
        if worker.exitcode is None:
            failure = f"worker {worker.pid} did not stop in time and was killed"
            worker.kill()
            worker.join()
        elif worker.exitcode != 0 and failure is None:
            failure = f"worker {worker.pid} exited with code {worker.exitcode}"
    return failure
