"""Every failure becomes the contract's JSON error; nothing else ever reaches a client."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import sqlalchemy.exc
from aiohttp import web
from aiohttp.typedefs import Handler

from service import errors
from service.web.responses import error_response

logger = logging.getLogger(__name__)

_STATUS = {
    errors.InvalidRequest: 400,
    errors.ValidationFailed: 422,
    errors.EmailTaken: 409,
    errors.WrongPassword: 403,
    errors.InvalidCredentials: 401,
    errors.AccountDisabled: 403,
    errors.RateLimited: 429,
    errors.InvalidGrant: 401,
    errors.TokenReused: 401,
    errors.InvalidToken: 401,
    errors.CsrfFailed: 403,
    errors.NotFound: 404,
    errors.ServiceUnavailable: 503,
}

_HTTP_CODES = {
    400: ("invalid_request", "The request is malformed."),
    404: ("not_found", "No such route."),
    405: ("method_not_allowed", "This method is not allowed on this route."),
    413: ("payload_too_large", "The request body is larger than 64 KiB."),
}

# Failures that mean "the database cannot serve right now", not "this code is wrong".
# From PostgreSQL, by SQLSTATE class: 08 connection exceptions, 53 insufficient resources (too
# many connections, disk full), 57 operator intervention (statement_timeout or an operator's
# cancel, shutdown, "the database system is starting up").
_UNAVAILABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.OperatorInterventionError,
    asyncpg.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)


def _status_of(error: errors.AuthError) -> int:
    for kind in type(error).__mro__:
        if kind in _STATUS:
            return _STATUS[kind]
    return 400


def auth_error_response(error: errors.AuthError) -> web.Response:
    headers: dict[str, str] = {}
    extra: dict[str, object] = {}
    if isinstance(error, errors.InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.ServiceUnavailable) and error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, errors.ValidationFailed):
        extra["fields"] = error.fields
    return error_response(_status_of(error), error.code, error.message, headers, **extra)


def _http_error_response(exc: web.HTTPException) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
    headers = {}
    if exc.status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return error_response(exc.status, code, message, headers)


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    # SQLAlchemy wraps the driver's error in its own DBAPI adapter error (`orig`), which in turn
    # is raised from asyncpg's exception: look through the whole chain.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, _UNAVAILABLE):
            return True
        seen.add(id(current))
        orig = current.orig if isinstance(current, sqlalchemy.exc.DBAPIError) else None
        current = orig if isinstance(orig, BaseException) else current.__cause__
    return False


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.AuthError as exc:
        return auth_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error_response(exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if _is_unavailable(exc):
            logger.error(
                "database unavailable on %s %s: %s",
                request.method,
                request.path,
                type(exc).__name__,
            )
            return auth_error_response(errors.ServiceUnavailable(retry_after=1))
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "An unexpected error occurred.")
