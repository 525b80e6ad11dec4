"""The HTTP layer's own limits: how long a client may take to send its request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HttpSettings:
    # Seconds for a request's headers (from the connection's start, or from the previous answer
    # on a kept-alive connection) and, separately, for its body: a slow client cannot hold a
    # connection longer than this.
    request_read_timeout: float = 15.0


def load_http_settings(env: Mapping[str, str]) -> HttpSettings:
    """The section from `env`; ConfigError naming the variable for a bad value."""
    # Imported here: service.config imports this module to build Settings.
    from service.config import _positive_float, _read

    timeout = _read(env, "AUTH_REQUEST_READ_TIMEOUT", _positive_float)
    return HttpSettings() if timeout is None else HttpSettings(request_read_timeout=timeout)
