"""CORS for browsers on other origins, by path: every /v1/* and /oauth/* answer (those of
sub-applications included) gets the headers when its Origin is on AUTH_CORS_ORIGINS, and none
when it is not.

A small middleware rather than aiohttp-cors: that library registers CORS per route object (so a
route added later by a sub-application is silently left out), answers preflights 200 rather than
204, and would need a wrapper anyway for the "no header at all for other origins" and per-path
rules; the whole rule set here is a few lines.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

from service.web.appkeys import SETTINGS

PREFIXES = ("/v1/", "/oauth/")
ALLOWED_HEADERS = "Authorization, Content-Type, X-CSRF-Token, X-Request-ID"
# Headers a front end may read from a cross-origin answer (besides the CORS-safelisted ones).
EXPOSED_HEADERS = "Retry-After, WWW-Authenticate, X-Request-ID"
# How long a browser may cache a preflight answer (Chromium caps it at 7200 s).
PREFLIGHT_MAX_AGE = 7200


def _covered(path: str) -> bool:
    return path.startswith(PREFIXES)


def _route_methods(request: web.Request) -> list[str] | None:
    """The methods of the route the preflight asks about; None for an unknown route."""
    exception = request.match_info.http_exception
    if isinstance(exception, web.HTTPMethodNotAllowed):
        return sorted(exception.allowed_methods)
    if exception is not None:
        return None
    return [request.match_info.route.method]


def _add_vary(response: web.StreamResponse) -> None:
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"


def _allow(response: web.StreamResponse, origin: str) -> None:
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    origins = request.config_dict[SETTINGS].browsers.cors_origins
    if not origins or not _covered(request.path):
        return await handler(request)
    origin = request.headers.get("Origin")
    listed = origin is not None and origin in origins
    is_preflight = (
        request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    )
    if listed and is_preflight:
        assert origin is not None
        methods = _route_methods(request)
        if methods is not None:
            preflight = web.Response(status=204)
            _allow(preflight, origin)
            preflight.headers["Access-Control-Allow-Methods"] = ", ".join(methods)
            preflight.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            preflight.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE)
            _add_vary(preflight)
            return preflight
    response = await handler(request)
    if not response.prepared:
        # Vary on every answer of these paths, listed origin or not: a shared cache must not
        # hand one origin's answer (with or without the CORS headers) to another.
        _add_vary(response)
        if listed:
            assert origin is not None
            _allow(response, origin)
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response
