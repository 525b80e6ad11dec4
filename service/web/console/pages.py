"""The console's pages and actions. Reads are GET; every change is a POST form carrying the
session's CSRF token, answered with a redirect (303) to the page that shows the result."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from service.domain import console as domain
from service.domain.console import ConsoleCaller, ConsoleSignInFailed
from service.flows.console import StaffSignIn, SupportDesk
from service.web.caller import client, flows
from service.web.console.security import (
    LOGIN_PATH,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    clear_console_cookie,
    form_with_csrf,
    see_other,
    set_console_cookie,
)

routes = web.RouteTableDef()
# Messages shown after an action (chosen by key, so nothing from the URL is reflected).
DONE = {
    "session_revoked": "The session was revoked: that device's refresh token no longer works.",
    "all_revoked": "Every session of this user was revoked.",
    "disabled": "The account is disabled and all its sessions were revoked.",
    "reset_sent": "A password reset message with a new code is on its way to the user.",
    "enabled": "The account is enabled again.",
}
SIGNIN_MAX_AGE = 3600
_CSS = resources.files("service.web.console").joinpath("static/console.css").read_bytes()

StaffHandler = Callable[[web.Request, ConsoleCaller], Awaitable[web.StreamResponse]]


def _sign_in(request: web.Request) -> StaffSignIn:
    return flows(request).console[0]


def _desk(request: web.Request) -> SupportDesk:
    return flows(request).console[1]


def _render(
    request: web.Request,
    template: str,
    caller: ConsoleCaller | None,
    status: int = 200,
    **values: Any,
) -> web.Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    values.update(me=caller, csrf=domain.csrf_token(token) if caller else "")
    return aiohttp_jinja2.render_template(template, request, values, status=status)


def staff_only(handler: StaffHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Runs `handler` for a live console session; anyone else is sent to the sign-in page
    (ConsoleSessionEnded becomes that redirect in the console middleware)."""

    @functools.wraps(handler)
    async def with_caller(request: web.Request) -> web.StreamResponse:
        caller = await _sign_in(request).authenticate(request.cookies.get(SESSION_COOKIE))
        return await handler(request, caller)

    return with_caller


@routes.get("/static/console.css")
async def stylesheet(request: web.Request) -> web.Response:
    return web.Response(
        body=_CSS, content_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


@routes.get("/")
async def index(request: web.Request) -> web.StreamResponse:
    if not await _sign_in(request).has_staff():
        return _render(request, "setup.html", None)
    return see_other("/console/users")


def _login_form(
    request: web.Request, status: int = 200, error: str | None = None, email: str = ""
) -> web.Response:
    secret = domain.new_token()
    response = _render(
        request,
        "login.html",
        None,
        status,
        signin_csrf=domain.csrf_token(secret),
        error=error,
        email=email,
    )
    set_console_cookie(response, request, SIGNIN_COOKIE, secret, SIGNIN_MAX_AGE)
    return response


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if not await _sign_in(request).has_staff():
        return _render(request, "setup.html", None)
    return _login_form(request)


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await form_with_csrf(request, SIGNIN_COOKIE)
    email, password = form.get("email", "").strip(), form.get("password", "")
    try:
        token = await _sign_in(request).sign_in(email, password, client(request))
    except ConsoleSignInFailed as exc:
        return _login_form(request, 401, exc.message, email)
    response = see_other("/console/users")
    clear_console_cookie(response, request, SIGNIN_COOKIE)
    # Max-Age is the absolute end; the server also ends it after 30 minutes idle.
    set_console_cookie(response, request, SESSION_COOKIE, token, domain.ABSOLUTE_SECONDS)
    return response


@routes.post("/logout")
@staff_only
async def logout(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _sign_in(request).sign_out(request.cookies[SESSION_COOKIE])
    response = see_other(LOGIN_PATH)
    clear_console_cookie(response, request, SESSION_COOKIE)
    return response


@routes.get("/users")
@staff_only
async def search(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    query = request.query.get("q", "").strip()
    page = None
    if query:
        page = await _desk(request).search(query, request.query.get("after") or None)
    return _render(request, "users.html", caller, query=query, page=page)


@routes.get("/users/{id}")
@staff_only
async def user_page(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    detail = await _desk(request).user_detail(request.match_info["id"])
    done = DONE.get(request.query.get("done", ""))
    return _render(request, "user.html", caller, detail=detail, done=done)


def _back_to_user(request: web.Request, done: str) -> web.Response:
    return see_other(f"/console/users/{request.match_info['id']}?done={done}")


@routes.post("/users/{id}/sessions/{session_id}/revoke")
@staff_only
async def revoke_session(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _desk(request).revoke_session(
        caller, request.match_info["id"], request.match_info["session_id"], client(request)
    )
    return _back_to_user(request, "session_revoked")


@routes.post("/users/{id}/sessions/revoke")
@staff_only
async def revoke_all(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _desk(request).revoke_all(caller, request.match_info["id"], client(request))
    return _back_to_user(request, "all_revoked")


@routes.post("/users/{id}/password-reset")
@staff_only
async def send_password_reset(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _desk(request).send_password_reset(caller, request.match_info["id"], client(request))
    return _back_to_user(request, "reset_sent")


@routes.post("/users/{id}/disable")
@staff_only
async def disable(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _desk(request).set_disabled(caller, request.match_info["id"], True, client(request))
    return _back_to_user(request, "disabled")


@routes.post("/users/{id}/enable")
@staff_only
async def enable(request: web.Request, caller: ConsoleCaller) -> web.StreamResponse:
    await form_with_csrf(request, SESSION_COOKIE)
    await _desk(request).set_disabled(caller, request.match_info["id"], False, client(request))
    return _back_to_user(request, "enabled")
