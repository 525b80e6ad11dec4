"""The application factory: settings, keys and clock in; a ready aiohttp app out."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from service.auth import Auth, Clock, system_clock
from service.config import Settings
from service.db.engine import create_engine
from service.keys import KeySet
from service.migrate import head_revision
from service.passwords import PasswordHasher
from service.pruning import Pruner, run_periodically
from service.tokens import AccessTokens
from service.web.appkeys import AUTH, ENGINE, HEAD_REVISION, KEYS, PRUNE_TASK, SETTINGS
from service.web.handlers import routes
from service.web.middlewares import error_middleware

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 16 * 1024


def create_app(
    settings: Settings,
    database_url: str,
    keys: KeySet,
    clock: Clock = system_clock,
) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=MAX_BODY_BYTES,
        # Request lines and single headers up to 16 KiB are served under the contract's rules.
        handler_args={"max_line_size": MAX_HEADER_BYTES, "max_field_size": MAX_HEADER_BYTES},
    )
    app[SETTINGS] = settings
    app[KEYS] = keys
    app[HEAD_REVISION] = head_revision() or ""
    app.add_routes(routes)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings, database_url)
        # bcrypt releases the GIL, so one thread per core uses every core without oversubscribing.
        executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="bcrypt")
        hasher = PasswordHasher(settings.bcrypt_rounds, executor)
        access_tokens = AccessTokens(keys, settings.issuer, settings.audience)
        app[ENGINE] = engine
        app[AUTH] = Auth(engine, settings, access_tokens, hasher, clock)
        try:
            yield
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
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

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(periodic_pruning)
    return app
