"""What every console answer carries (security headers), what every form must carry (the
CSRF token), and HTML error pages: the console never answers JSON or a 500 traceback."""

from __future__ import annotations

import asyncio
import logging

import aiohttp_jinja2
from aiohttp import web
from aiohttp.typedefs import Handler

from service.domain import console as domain
from service.domain import errors
from service.domain.console import ConsoleSessionEnded, ConsoleSignInFailed, StaffForbidden
from service.web.appkeys import SETTINGS
from service.web.cookies import own_origin
from service.web.middlewares import _is_unavailable

logger = logging.getLogger(__name__)

SESSION_COOKIE = "rotor_console"
# Before sign-in there is no session: the sign-in form's token is bound to this cookie instead.
SIGNIN_COOKIE = "rotor_console_signin"
COOKIE_PATH = "/console"
LOGIN_PATH = "/console/login"
HEADERS = {
    # No inline script or style anywhere: only the console's own stylesheet may load.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    429: "Too many attempts",
    503: "Unavailable",
    500: "Something went wrong",
}


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def set_console_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        secure=request.config_dict[SETTINGS].cookie_secure,
        httponly=True,
        samesite="Strict",
    )


def clear_console_cookie(response: web.StreamResponse, request: web.Request, name: str) -> None:
    set_console_cookie(response, request, name, "", 0)


async def form_with_csrf(request: web.Request, secret_cookie: str) -> dict[str, str]:
    """The posted form, once its CSRF token matches the one bound to `secret_cookie` and the
    request comes from this origin; raises CsrfFailed otherwise."""
    # Belt and braces beside the token. Under Referrer-Policy: no-referrer a browser sends
    # "Origin: null" with its form posts, so the Fetch Metadata header is checked first.
    fetch_site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if fetch_site is not None:
        foreign = fetch_site not in ("same-origin", "none")
    else:
        own = own_origin(request, request.config_dict[SETTINGS])
        foreign = origin not in (None, "null") and origin.lower() != own
    if foreign:
        raise errors.CsrfFailed("This form was sent from another site.")
    secret = request.cookies.get(secret_cookie)
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    if not secret or not domain.csrf_matches(secret, fields.get("csrf", "")):
        raise errors.CsrfFailed("This form has expired; open the page again and resubmit.")
    return fields


def error_page(request: web.Request, status: int, message: str, **headers: str) -> web.Response:
    response = aiohttp_jinja2.render_template(
        "error.html",
        request,
        {"title": _TITLES.get(status, "Error"), "message": message, "me": None},
        status=status,
    )
    response.headers.update(headers)
    return response


def _page_for(request: web.Request, exc: BaseException) -> web.StreamResponse:
    if isinstance(exc, ConsoleSessionEnded):
        return see_other(LOGIN_PATH)
    if isinstance(exc, StaffForbidden):
        return error_page(request, 403, "Only an admin may disable or enable an account.")
    if isinstance(exc, errors.CsrfFailed):
        return error_page(request, 403, exc.message)
    if isinstance(exc, errors.NotFound):
        return error_page(request, 404, "There is no such user or session.")
    if isinstance(exc, errors.RateLimited):
        message = f"Too many failed sign-ins. Try again in {exc.retry_after} seconds."
        return error_page(request, 429, message, **{"Retry-After": str(exc.retry_after)})
    if isinstance(exc, errors.ServiceUnavailable):
        return error_page(request, 503, "The service is busy or its database is unreachable.")
    if isinstance(exc, ConsoleSignInFailed | errors.AuthError):
        return error_page(request, 400, exc.message if isinstance(exc, errors.AuthError) else "")
    if isinstance(exc, web.HTTPException):
        return error_page(request, exc.status, exc.reason)
    if _is_unavailable(exc):
        return error_page(request, 503, "The database is unreachable; try again shortly.")
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_page(request, 500, "An unexpected error occurred.")


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response: web.StreamResponse
    if request.path == "/console":
        response = see_other("/console/")
    else:
        try:
            response = await handler(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # every failure becomes an HTML page with the same headers
            if isinstance(exc, web.HTTPException) and exc.status < 400:
                raise
            response = _page_for(request, exc)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
