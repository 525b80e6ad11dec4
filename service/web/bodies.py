"""Request bodies at the edge, before any handler runs: only JSON on `/v1/*`, read within
AUTH_REQUEST_READ_TIMEOUT, and a client that leaves mid-body is a disconnect, not an outage.

The body is read here once (aiohttp keeps it, so the handler's `request.read()` returns it at
once): a deadline on reading must cover the whole body, and a read that fails because the client
went away must not reach the error middleware, which takes an OSError for a lost database.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from service.domain.errors import RequestTimeout, UnsupportedMediaType
from service.web.responses import JSON

logger = logging.getLogger(__name__)

JSON_ONLY_PREFIX = "/v1/"
# The access log's and the metrics' status for a request the client abandoned (nginx's
# convention): never a 5xx, so a client cannot fake an outage alert by hanging up.
CLIENT_CLOSED_REQUEST = 499
# A multipart body is streamed by its reader, not buffered: not read ahead here.
_STREAMED = "multipart/"


class ClientDisconnected(Exception):
    """The client closed its connection before its request body arrived."""


def check_media_type(request: web.Request) -> None:
    """UnsupportedMediaType for a `/v1/*` request with a body that is not declared JSON.

    A browser sends a cross-site form or a text/plain POST without a CORS preflight: refusing
    every other type is what keeps such a request from logging a victim in (login CSRF)."""
    if not request.path.startswith(JSON_ONLY_PREFIX) or not request.body_exists:
        return
    # request.content_type is the media type without parameters (charset=...), lower-cased.
    if "Content-Type" not in request.headers or request.content_type != JSON:
        raise UnsupportedMediaType()


async def read_ahead(request: web.Request, seconds: float) -> None:
    """Read the whole body within `seconds`; RequestTimeout when it is late,
    ClientDisconnected when the client hung up meanwhile."""
    if not request.body_exists or request.content_type.startswith(_STREAMED):
        return
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        raise RequestTimeout() from None
    except ConnectionError:  # aiohttp's ClientConnectionResetError is a ConnectionResetError
        raise ClientDisconnected() from None


def body_middleware(read_timeout: float) -> Middleware:
    """Innermost middleware (inside error_middleware, which maps its AuthErrors)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_media_type(request)
        try:
            await read_ahead(request, read_timeout)
        except RequestTimeout:
            # The rest of the body may still be on its way: this connection cannot carry another
            # request, so it is closed after the answer.
            logger.info("request body too slow on %s %s", request.method, request.path)
            raise
        except ClientDisconnected:
            logger.info("client disconnected on %s %s", request.method, request.path)
            # Nobody will read this answer; its status is what the access log and metrics count.
            response = web.Response(status=CLIENT_CLOSED_REQUEST)
            response.force_close()
            return response
        return await handler(request)

    return middleware
