"""JSON answers for requests that aiohttp's HTTP parser refuses before the application runs.

A malformed request line or header (a NUL or other control character in a header value, a line
over the limit) never reaches the middlewares: aiohttp's RequestHandler.handle_error answers it
with a text/plain body that quotes the offending line back. The contract wants every error as
JSON and no error body that repeats a credential, and aiohttp offers no hook for this, so
`install()` wraps that one method, process-wide and once: aiohttp's own checks and logging still
run (service/logs.py keeps the quote out of the log), and the answer becomes the contract's error.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aiohttp.web_protocol import RequestHandler
from aiohttp.web_response import StreamResponse

from service.web.responses import error_response

_INSTALLED = "_rotor_json_errors"
# aiohttp's default Server header names its version (and Python's): a free hint for whoever
# looks for a known vulnerability. The product name alone tells nothing.
SERVER = "rotor"


async def anonymous_server(_request: object, response: StreamResponse) -> None:
    """on_response_prepare: runs before aiohttp would add its own Server header."""
    response.headers["Server"] = SERVER


def _json_error(status: int) -> StreamResponse:
    if status == HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE:
        code, message = "header_too_large", "The request headers are too large."
    elif status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        code, message = "internal_error", "An unexpected error occurred."
    else:
        code, message = "invalid_request", "The request is not valid HTTP."
    response = error_response(status, code, message)
    response.headers["Server"] = SERVER
    response.force_close()
    return response


def install() -> None:
    if getattr(RequestHandler, _INSTALLED, False):
        return
    plain = RequestHandler.handle_error

    def handle_error(
        self: RequestHandler,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        plain(self, request, status, exc, message)  # logs, and refuses once output has started
        return _json_error(status)

    RequestHandler.handle_error = handle_error  # type: ignore[method-assign]
    setattr(RequestHandler, _INSTALLED, True)
