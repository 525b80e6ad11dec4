"""Logging: one JSON object per line for machines, a readable line on a terminal.

Every record emitted while a request is served carries that request's id (and its user and
session ids once known) through a context variable, so a security warning can be joined with its
request line. Records carry only what the code puts in them: no code path logs a request body,
a header value other than the request id, a token, a password or a secret.
"""

from __future__ import annotations

import functools
import logging
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from aiohttp.http_exceptions import HttpProcessingError

from service.domain.observer import AdminAction, AuthObserver, LoginOutcome, RefreshOutcome

ACCESS_LOGGER = "rotor.access"
SECURITY_LOGGER = "rotor.security"
# Extra fields of a record travel in this attribute: `logger.info(msg, extra={FIELDS: {...}})`.
FIELDS = "fields"

_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("rotor_request", default=None)
_security = logging.getLogger(SECURITY_LOGGER)


@contextmanager
def request_context(request_id: str) -> Iterator[dict[str, Any]]:
    """The fields of the request being served; observers add the user and session ids."""
    fields: dict[str, Any] = {"request_id": request_id}
    token = _request_fields.set(fields)
    try:
        yield fields
    finally:
        _request_fields.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current request's log context (no-op outside a request)."""
    current = _request_fields.get()
    if current is not None:
        current.update(fields)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_request_fields.get() or {})
    extra = getattr(record, FIELDS, None)
    if isinstance(extra, dict):
        fields.update(extra)
    return fields


@functools.lru_cache(maxsize=4)
def _second(epoch_second: int) -> str:
    # Every request logs a line: format the date once per second, not once per line.
    return datetime.fromtimestamp(epoch_second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _time(record: logging.LogRecord) -> str:
    second = int(record.created)
    milliseconds = int((record.created - second) * 1000)
    return f"{_second(second)}.{milliseconds:03d}Z"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode("utf-8")


class HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={value}" for key, value in _fields(record).items())
        line = f"{_time(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


class RedactRejectedRequests(logging.Filter):
    """aiohttp logs a request its parser refused with the parser's message, which quotes the raw
    request line or header (an Authorization header, say). Keep the event, drop the quote."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.msg = "rejected a malformed HTTP request (%s, status %s)"
            record.args = (type(error).__name__, error.code)
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def configure_logging(
    stream: IO[str] | None = None, *, json: bool | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log record to `stream` (stderr): readable on a terminal, JSON otherwise."""
    stream = sys.stderr if stream is None else stream
    if json is None:
        json = not (hasattr(stream, "isatty") and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if json else HumanFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    aiohttp_server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, RedactRejectedRequests) for f in aiohttp_server.filters):
        aiohttp_server.addFilter(RedactRejectedRequests())
    return handler


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


class LogObserver(AuthObserver):
    """Logs security events at warning level."""

    def on_login(self, outcome: LoginOutcome, user_id: uuid.UUID | None) -> None:
        if outcome == "success":
            return
        # For an unknown email user_id is None: the email itself is not logged (it may be a
        # mistyped password).
        fields = {"event": f"login_{outcome}", "target_user_id": _id(user_id)}
        _security.warning("login %s", outcome, extra={FIELDS: fields})

    def on_refresh(
        self, outcome: RefreshOutcome, user_id: uuid.UUID | None, session_id: uuid.UUID | None
    ) -> None:
        if outcome != "reuse_detected":
            return
        fields = {
            "event": "refresh_reuse_detected",
            "target_user_id": _id(user_id),
            "target_session_id": _id(session_id),
        }
        _security.warning("refresh token reuse: session revoked", extra={FIELDS: fields})

    def on_admin_action(self, action: AdminAction, user_id: uuid.UUID) -> None:
        fields = {"event": f"admin_{action}", "target_user_id": str(user_id)}
        _security.warning("admin %s", action, extra={FIELDS: fields})

    def on_id_token_rejected(self, provider: str, check: str) -> None:
        # Which rule failed, never the token (it may still be valid for another relying party).
        fields = {"event": "id_token_rejected", "provider": provider, "check": check}
        _security.warning("id token rejected: %s", check, extra={FIELDS: fields})
