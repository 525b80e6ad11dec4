"""`GET /metrics` and the request counters; added to the app only when AUTH_METRICS=true."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from service.ops.metrics import CONTENT_TYPE, Metrics
from service.web.middlewares import route_template


def metrics_middleware(metrics: Metrics) -> Middleware:
    """Counts and times every request by route template and status (inside the request log,
    outside error_middleware, so error responses are counted with their real status)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status: int | None = None  # stays None when the client left (CancelledError)
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if status is not None:
                seconds = time.perf_counter() - started
                metrics.observe_request(request.method, route_template(request), status, seconds)

    return middleware


def metrics_route(metrics: Metrics) -> web.RouteDef:
    async def scrape(request: web.Request) -> web.Response:
        # Merging many workers' files is disk work: keep it off the event loop.
        body = await asyncio.get_running_loop().run_in_executor(None, metrics.render)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    return web.get("/metrics", scrape)
