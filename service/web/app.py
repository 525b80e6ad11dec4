"""The application factory: settings, keys and clock in; a ready aiohttp app out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from service.config import Settings
from service.db.engine import create_engine
from service.domain.clock import Clock, system_clock
from service.domain.codes import code_key
from service.domain.keys import KeySet
from service.domain.messages import MessageRenderer
from service.domain.observer import AuthObserver, Observers
from service.domain.passwords import DurationCallback, PasswordHasher
from service.domain.tokens import AccessTokens
from service.flows.pruning import Pruner, run_periodically
from service.flows.wiring import build_flows
from service.ops.logs import LogObserver
from service.ops.mail import sender_for
from service.ops.migrate import head_revision
from service.ops.oidc_keys import ProviderKeys
from service.ops.outbox import OutboxDelivery
from service.web import admin, bodies, console, events, identities, oauth, protocol, recovery
from service.web.appkeys import (
    ENGINE,
    FLOWS,
    HASHER,
    HEAD_REVISION,
    KEYS,
    OPENAPI,
    OUTBOX,
    PROVIDER_KEYS,
    PRUNE_TASK,
    SETTINGS,
)
from service.web.cors import cors_middleware
from service.web.handlers import routes
from service.web.middlewares import error_middleware, request_log_middleware
from service.web.openapi import document_json

MAX_BODY_BYTES = 64 * 1024
# Niceness of the bcrypt threads (0 is the loop's; 10 gives them about a tenth of its weight).
BCRYPT_NICENESS = 10
MAX_HEADER_BYTES = 16 * 1024
# 16 KiB of headers may be many short ones; the shortest header line ("a:" CRLF) is 4 bytes.
MAX_HEADERS = MAX_HEADER_BYTES // 4
LINGER_SECONDS = 2.0


def create_app(
    settings: Settings,
    database_url: str,
    keys: KeySet,
    clock: Clock = system_clock,
) -> web.Application:
    protocol.install()  # JSON even for what aiohttp's parser refuses
    observers: list[AuthObserver] = [LogObserver()]
    middlewares: list[Middleware] = [request_log_middleware]
    metrics = None
    if settings.metrics:
        # Imported only now: prometheus_client must not be imported before a worker has
        # PROMETHEUS_MULTIPROC_DIR (see service/ops/metrics.py).
        from service.ops.metrics import Metrics, configured_multiprocess_dir
        from service.web.metrics import metrics_middleware, metrics_route

        metrics = Metrics(configured_multiprocess_dir())
        observers.append(metrics)
        middlewares.append(metrics_middleware(metrics))
    middlewares.append(cors_middleware)  # outside error_middleware: errors get CORS headers too
    middlewares.append(error_middleware)
    middlewares.append(bodies.body_middleware(settings.http.request_read_timeout))
    # handler_args here, not in run_app (aiohttp 3.14's run_app has no such parameter: passed there
    # it made aiohttp drop every server option, access_log=None included, with a warning).
    app = web.Application(
        middlewares=middlewares,
        client_max_size=MAX_BODY_BYTES,
        handler_args=handler_args(settings.http.request_read_timeout),
    )
    app.on_response_prepare.append(protocol.anonymous_server)
    app[SETTINGS] = settings
    app[KEYS] = keys
    app[HEAD_REVISION] = head_revision() or ""
    app[OPENAPI] = document_json()
    app.add_routes(routes)
    app.add_routes(events.routes)
    app.add_routes(recovery.routes)
    app.add_routes(identities.routes)
    app.add_subapp(admin.PREFIX, admin.admin_app(MAX_BODY_BYTES))
    app.add_subapp(console.PREFIX, console.console_app(MAX_BODY_BYTES))
    oauth.install(app, MAX_BODY_BYTES)
    if metrics is not None:
        app.add_routes([metrics_route(metrics)])
    else:
        # Off: GET /metrics is 404 not_found, and other methods 405 as on any documented path.
        app.add_routes([web.get("/metrics", _metrics_off)])
    bcrypt_timer: DurationCallback | None = None if metrics is None else metrics.observe_bcrypt
    renderer = MessageRenderer(settings.mail)
    renderer.check()  # a broken template override stops start-up, like a bad variable

    async def resources(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings, database_url)
        # bcrypt releases the GIL, so one thread per core uses every core without oversubscribing.
        threads = os.cpu_count() or 1
        executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bcrypt", initializer=_lower_priority
        )
        hasher = PasswordHasher(
            settings.bcrypt_rounds,
            executor,
            on_duration=bcrypt_timer,
            max_pending=settings.bcrypt_queue_per_thread * threads,
        )
        access_tokens = AccessTokens(keys, settings.issuer, settings.audience)
        if metrics is not None:
            metrics.instrument_pool(engine)
        # One HTTP client for every identity provider's discovery document and keys.
        http = aiohttp.ClientSession(trust_env=False, raise_for_status=False)
        provider_keys = ProviderKeys(
            http, clock, fetch_timeout=settings.oidc.fetch_timeout, wait=settings.oidc.wait
        )
        app[ENGINE] = engine
        app[HASHER] = hasher
        app[PROVIDER_KEYS] = provider_keys
        app[FLOWS] = build_flows(
            engine,
            settings,
            access_tokens,
            hasher,
            clock,
            Observers(observers),
            code_key(keys),
            renderer,
            provider_keys,
        )
        try:
            yield
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            await http.close()
            await engine.dispose()

    async def periodic_pruning(app: web.Application) -> AsyncIterator[None]:
        # Appended after `resources`, so it is cancelled before the engine is disposed.
        if settings.prune_interval is None:
            yield
            return
        pruner = Pruner(app[ENGINE], settings, clock)
        task = asyncio.create_task(run_periodically(pruner, settings.prune_interval))
        app[PRUNE_TASK] = task
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def outbox_delivery(app: web.Application) -> AsyncIterator[None]:
        # After `resources`: stopped (its message finished, its leases given back) before the
        # engine is disposed.
        delivery = OutboxDelivery(
            app[ENGINE], sender_for(settings.mail), clock, Observers(observers)
        )
        app[OUTBOX] = delivery
        if settings.mail.transport_configured and settings.mail.poll_interval is not None:
            delivery.start(settings.mail.poll_interval)
        try:
            yield
        finally:
            await delivery.stop()

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(periodic_pruning)
    app.cleanup_ctx.append(outbox_delivery)
    return app


def _lower_priority() -> None:
    """Run this bcrypt thread at a lower CPU priority than the event loop (Linux: nice applies
    per thread), so a login flood cannot delay the loop's short requests."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICENESS)


async def _metrics_off(request: web.Request) -> web.Response:
    raise web.HTTPNotFound()


def handler_args(read_timeout: float) -> dict[str, float]:
    """Limits for aiohttp's HTTP parser (the Application's handler_args).

    `read_timeout` (AUTH_REQUEST_READ_TIMEOUT) is aiohttp's keep-alive timeout: it closes a
    connection whose next request's headers are not complete that long after the connection
    opened or the previous answer went out, however slowly bytes trickle in (the body has its
    own deadline, service/web/bodies.py). An idle kept-alive connection ends after it too.
    After an answer to a request whose body was not read to its end (too large, too slow),
    aiohttp reads and drops what still comes for `lingering_time` before closing, so that the
    client sees the answer rather than a reset: at most LINGER_SECONDS, not its default 10 s."""
    return {
        "max_line_size": MAX_HEADER_BYTES,
        "max_field_size": MAX_HEADER_BYTES,
        "max_headers": MAX_HEADERS,
        "keepalive_timeout": read_timeout,
        "lingering_time": min(LINGER_SECONDS, read_timeout),
    }
