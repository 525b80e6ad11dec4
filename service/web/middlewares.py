"""Every failure becomes the contract's JSON error; nothing else ever reaches a client.
Every request gets an id and one access-log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

import asyncpg
import orjson
import sqlalchemy.exc
from aiohttp import web
from aiohttp.typedefs import Handler

from service.db import failover
from service.domain import errors
from service.domain.console import ConsoleSessionEnded, ConsoleSignInFailed, StaffForbidden
from service.domain.id_tokens import IdTokenRejected
from service.ops import logs
from service.web.responses import error_response

logger = logging.getLogger(__name__)

# Every client-visible error class, with its status: no fallback, so a new error class without a
# status is caught by tests/unit/test_error_statuses.py instead of answering a silent 400.
STATUS_OF_ERROR: dict[type[errors.AuthError], int] = {
    errors.InvalidRequest: 400,
    errors.UnsupportedMediaType: 415,
    errors.RequestTimeout: 408,
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
    # The support console renders these as HTML pages, with the same statuses.
    ConsoleSignInFailed: 401,
    ConsoleSessionEnded: 401,
    StaffForbidden: 403,
    IdTokenRejected: 401,
    errors.InvalidCode: 400,
    errors.EmailNotVerified: 403,
    errors.IdentityConflict: 409,
    errors.LastLoginMethod: 409,
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
    response = error_response(
        STATUS_OF_ERROR[type(error)], error.code, error.message, headers, **extra
    )
    if isinstance(error, errors.RequestTimeout):
        response.force_close()  # the rest of the late body would be read as the next request
    return response


def _http_error_response(exc: web.HTTPException) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason))
    headers = {}
    if exc.status == 405 and "Allow" in exc.headers:
        headers["Allow"] = exc.headers["Allow"]
    return error_response(exc.status, code, message, headers)


def _is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    # A failover: a demoted primary refusing writes, an admin shutdown, no node taking writes.
    if failover.is_failover_error(exc):
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


OAUTH_PREFIX = "/oauth/"


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await _answer_errors(request, handler)
    if request.path.startswith(OAUTH_PREFIX) and isinstance(response, web.Response):
        _add_error_description(response)
    return response


def _add_error_description(response: web.Response) -> None:
    """An error the /oauth sub-app could not shape itself (a body over the limit, an outage)
    still carries RFC 6749's error_description, as the sub-app's own errors do."""
    if response.status < 400 or not isinstance(response.body, bytes):
        return
    body = orjson.loads(response.body)
    if isinstance(body, dict) and "error" in body and "error_description" not in body:
        body["error_description"] = body.get("message", "")
        response.body = orjson.dumps(body)


async def _answer_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
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


REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is kept when it is short and printable ASCII with no spaces (so it can neither
# break a log line nor smuggle fields into the readable format); otherwise a new one is made.
_CLIENT_REQUEST_ID = re.compile(r"[\x21-\x7e]{1,128}")
UNMATCHED_ROUTE = "unmatched"
_access = logging.getLogger(logs.ACCESS_LOGGER)


def request_id_of(header: str | None) -> str:
    if header is not None and _CLIENT_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def route_template(request: web.Request) -> str:
    """The matched route's path template (`/v1/sessions/{id}`): never the raw path, so ids and
    unknown paths never become log fields or metric labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED_ROUTE


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: gives the request its id, echoes it, and logs one line when it ends."""
    request_id = request_id_of(request.headers.get(REQUEST_ID_HEADER))
    started = time.perf_counter()
    with logs.request_context(request_id) as fields:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if not response.prepared:
                response.headers[REQUEST_ID_HEADER] = request_id
            return response
        except web.HTTPException as exc:  # only non-error statuses get past error_middleware
            status = exc.status
            exc.headers[REQUEST_ID_HEADER] = request_id
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        finally:
            line = {
                "method": request.method,
                "route": route_template(request),
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            }
            # user_id and session_id come from the request context, once a use case knows them.
            fields.setdefault("user_id", None)
            fields.setdefault("session_id", None)
            _access.info(
                "%s %s %s", request.method, line["route"], status, extra={logs.FIELDS: line}
            )
