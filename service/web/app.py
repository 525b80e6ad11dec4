"""The application factory: settings, keys and clock in; a ready aiohttp app out."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from service.auth import Auth, Clock, system_clock
from service.config import Settings
from service.db.engine import create_engine
from service.keys import KeySet
from service.migrate import head_revision
from service.passwords import PasswordHasher
from service.tokens import AccessTokens
from service.web.appkeys import AUTH, ENGINE, HEAD_REVISION, KEYS, SETTINGS
from service.web.handlers import routes
from service.web.middlewares import error_middleware

MAX_BODY_BYTES = 64 * 1024
# Hashes running or waiting per bcrypt thread before logins get 503 (see PasswordHasher).
BCRYPT_PENDING_PER_THREAD = 2
# Niceness of the bcrypt threads (0 is the loop's; 10 gives them about a tenth of its weight).
BCRYPT_NICENESS = 10
# Request lines and single headers up to 16 KiB are served under the contract's rules.
MAX_HEADER_BYTES = 16 * 1024


def create_app(
    settings: Settings,
    database_url: str,
    keys: KeySet,
    clock: Clock = system_clock,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[KEYS] = keys
    app[HEAD_REVISION] = head_revision() or ""
    app.add_routes(routes)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        engine = create_engine(settings, database_url)
        # bcrypt releases the GIL, so one thread per core uses every core without oversubscribing.
        threads = os.cpu_count() or 1
        executor = ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="bcrypt", initializer=_lower_priority
        )
        hasher = PasswordHasher(
            settings.bcrypt_rounds, executor, max_pending=BCRYPT_PENDING_PER_THREAD * threads
        )
        access_tokens = AccessTokens(keys, settings.issuer, settings.audience)
        app[ENGINE] = engine
        app[AUTH] = Auth(engine, settings, access_tokens, hasher, clock)
        try:
            yield
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            await engine.dispose()

    app.cleanup_ctx.append(resources)
    return app


def _lower_priority() -> None:
    """Run this bcrypt thread at a lower CPU priority than the event loop (Linux: nice applies
    per thread), so a login flood cannot delay the loop's short requests."""
    if sys.platform == "linux":
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BCRYPT_NICENESS)


def handler_args() -> dict[str, int]:
    """Limits for aiohttp's HTTP parser, given to AppRunner / web.run_app."""
    return {"max_line_size": MAX_HEADER_BYTES, "max_field_size": MAX_HEADER_BYTES}
