"""The refresh cookie: written by login and refresh, cleared by logout, always with the same
attributes, so the clearing cookie replaces the one the browser holds (a browser keys cookies by
name, domain and path: a clearing cookie with another Path or Domain would leave the old one)."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from service.config import Settings
from service.domain.errors import CsrfFailed, InvalidGrant

REFRESH_COOKIE = "refresh_token"
CSRF_HEADER = "X-CSRF-Token"
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"


def _write(response: web.StreamResponse, settings: Settings, value: str, max_age: int) -> None:
    browsers = settings.browsers
    response.set_cookie(
        REFRESH_COOKIE,
        value,
        max_age=max_age,
        expires=_EPOCH if max_age == 0 else None,
        path=browsers.cookie_path,
        domain=browsers.cookie_domain,
        secure=settings.cookie_secure,
        httponly=True,
        samesite=browsers.cookie_samesite,
    )


def set_refresh_cookie(
    response: web.StreamResponse, settings: Settings, token: str, max_age: int
) -> None:
    _write(response, settings, token, max_age)


def clear_refresh_cookie(response: web.StreamResponse, settings: Settings) -> None:
    _write(response, settings, "", 0)


def refresh_cookie(request: web.Request) -> str | None:
    return request.cookies.get(REFRESH_COOKIE)


def has_csrf_header(request: web.Request) -> bool:
    return bool(request.headers.get(CSRF_HEADER, "").strip())


NO_COOKIE_MESSAGE = (
    "No refresh cookie arrived with this request (the CSRF header did). Usual causes: the "
    "cookie's Path (AUTH_COOKIE_PATH) does not cover this URL, its Domain (AUTH_COOKIE_DOMAIN), "
    "SameSite (AUTH_COOKIE_SAMESITE) or a front end on another site, or a fetch without "
    "credentials: 'include'."
)


def own_origin(request: web.Request, settings: Settings) -> str:
    """The scheme and Host the request was sent to; behind a trusted proxy, the scheme it says
    the browser used (X-Forwarded-Proto), since TLS usually ends at the proxy."""
    scheme = request.scheme
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if forwarded in ("http", "https") and _from_trusted_proxy(request, settings):
        scheme = forwarded
    return f"{scheme}://{request.host}".lower()


def _from_trusted_proxy(request: web.Request, settings: Settings) -> bool:
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in network for network in settings.trusted_proxies)


def cookie_credential(request: web.Request, settings: Settings) -> str | None:
    """The refresh cookie of a cookie-authenticated request (refresh, logout).

    None when the request does not use the cookie transport at all (no cookie, no CSRF header).
    Raises CsrfFailed when the cookie came without the CSRF header (a custom header forces a CORS
    preflight, which a cross-site form or image cannot pass) or from an Origin that is neither
    listed nor the request's own, and InvalidGrant (saying so) when the CSRF header came with no
    cookie: the front end meant to use the cookie, and the browser did not send it.
    """
    token = refresh_cookie(request)
    csrf = has_csrf_header(request)
    if token is None and not csrf:
        return None
    origin = request.headers.get("Origin")
    if origin is not None:
        allowed = origin in settings.browsers.cors_origins
        if not allowed and origin.lower() != own_origin(request, settings):
            raise CsrfFailed("This Origin may not use the refresh cookie.")
    if not csrf:
        raise CsrfFailed()
    if token is None:
        raise InvalidGrant(NO_COOKIE_MESSAGE)
    return token
