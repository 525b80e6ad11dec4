"""Route handlers: parse the request, call one use case, shape the response. Nothing more."""

from __future__ import annotations

import hmac

from aiohttp import web

from service.auth import Auth, ClientInfo, IssuedTokens
from service.db import failover
from service.domain.errors import (
    CsrfFailed,
    InvalidGrant,
    InvalidToken,
    NotFound,
    ServiceUnavailable,
)
from service.ops.migrate import current_revision
from service.web import schemas
from service.web.appkeys import AUTH, ENGINE, HEAD_REVISION, KEYS, OPENAPI, SETTINGS
from service.web.client import bearer_token, client_info
from service.web.responses import JSON, json_response, session_json, tokens_json, user_json

REFRESH_COOKIE = "refresh_token"
COOKIE_PATH = "/v1"
CSRF_HEADER = "X-CSRF-Token"
JWKS_MAX_AGE = 300

routes = web.RouteTableDef()


def _auth(request: web.Request) -> Auth:
    return request.app[AUTH]


async def _body(request: web.Request, model: type[schemas.Body], *, required: bool) -> schemas.Body:
    return schemas.parse_body(await request.read(), model, required=required)


def _client(request: web.Request) -> ClientInfo:
    return client_info(request, request.app[SETTINGS].trusted_proxies)


def _cookie_token(request: web.Request) -> str | None:
    """The refresh cookie; reading it requires the CSRF header (a custom header forces a CORS
    preflight, which a cross-site form or image cannot pass)."""
    token = request.cookies.get(REFRESH_COOKIE)
    if token is None:
        return None
    if not request.headers.get(CSRF_HEADER, "").strip():
        raise CsrfFailed()
    return token


def _token_response(
    request: web.Request, tokens: IssuedTokens, *, cookie: bool, status: int = 200
) -> web.Response:
    response = json_response(tokens_json(tokens, include_refresh_token=not cookie), status)
    response.headers["Cache-Control"] = "no-store"
    if cookie:
        response.set_cookie(
            REFRESH_COOKIE,
            tokens.refresh_token,
            max_age=tokens.refresh_expires_in,
            path=COOKIE_PATH,
            secure=request.app[SETTINGS].cookie_secure,
            httponly=True,
            samesite="Strict",
        )
    return response


# --- accounts and tokens ---------------------------------------------------------------------


@routes.post("/v1/register")
async def register(request: web.Request) -> web.Response:
    body = await _body(request, schemas.RegisterBody, required=True)
    user = await _auth(request).register(body.email, body.password)
    return json_response({"user": user_json(user)}, status=201)


@routes.post("/v1/login")
async def login(request: web.Request) -> web.Response:
    body = await _body(request, schemas.LoginBody, required=True)
    tokens = await _auth(request).login(
        body.email,
        body.password,
        _client(request),
        device_name=body.device_name,
        platform=body.platform,
    )
    return _token_response(request, tokens, cookie=body.transport == "cookie")


@routes.post("/v1/refresh")
async def refresh(request: web.Request) -> web.Response:
    body = await _body(request, schemas.RefreshBody, required=False)
    token, by_cookie = body.refresh_token, False
    if token is None:
        token, by_cookie = _cookie_token(request), True
        if token is None:
            raise InvalidGrant()
    tokens = await _auth(request).refresh(token, _client(request))
    return _token_response(request, tokens, cookie=by_cookie)


@routes.post("/v1/logout")
async def logout(request: web.Request) -> web.Response:
    body = await _body(request, schemas.LogoutBody, required=False)
    auth = _auth(request)
    access_token = bearer_token(request)
    if access_token is not None or "Authorization" in request.headers:
        claims = auth.verify_access_token(access_token)
        await auth.logout_with_access_token(claims, body.scope, _client(request))
    else:
        token = body.refresh_token if body.refresh_token is not None else _cookie_token(request)
        if token is None:
            raise InvalidToken()
        await auth.logout_with_refresh_token(token, body.scope, _client(request))
    response = web.Response(status=204)
    if REFRESH_COOKIE in request.cookies:
        response.del_cookie(REFRESH_COOKIE, path=COOKIE_PATH)
    return response


# --- the caller's account and sessions -------------------------------------------------------


@routes.get("/v1/me")
async def me(request: web.Request) -> web.Response:
    principal = await _auth(request).authenticate(bearer_token(request))
    return json_response(
        {"user": user_json(principal.user), "session_id": str(principal.session_id)}
    )


@routes.delete("/v1/me")
async def delete_me(request: web.Request) -> web.Response:
    auth = _auth(request)
    principal = await auth.authenticate(bearer_token(request))
    body = await _body(request, schemas.DeleteAccountBody, required=True)
    await auth.delete_account(principal, body.password, _client(request))
    return web.Response(status=204)


@routes.get("/v1/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    auth = _auth(request)
    principal = await auth.authenticate(bearer_token(request))
    sessions = await auth.list_sessions(principal.user.id, current=principal.session_id)
    return json_response({"sessions": [session_json(session) for session in sessions]})


@routes.delete("/v1/sessions/{id}")
async def delete_session(request: web.Request) -> web.Response:
    auth = _auth(request)
    principal = await auth.authenticate(bearer_token(request))
    await auth.end_session(principal, request.match_info["id"], _client(request))
    return web.Response(status=204)


@routes.post("/v1/password")
async def change_password(request: web.Request) -> web.Response:
    auth = _auth(request)
    principal = await auth.authenticate(bearer_token(request))
    body = await _body(request, schemas.PasswordChangeBody, required=True)
    await auth.change_password(
        principal, body.current_password, body.new_password, _client(request)
    )
    return web.Response(status=204)


# --- admin -----------------------------------------------------------------------------------


def _require_admin(request: web.Request) -> None:
    """404 while no admin key is configured; 401 unless the bearer is the key."""
    key = request.app[SETTINGS].admin_key
    if key is None:
        raise NotFound()
    presented = bearer_token(request) or ""
    if not hmac.compare_digest(presented.encode("utf-8", "replace"), key.encode("utf-8")):
        raise InvalidToken()


@routes.get("/v1/admin/users/{id}/sessions")
async def admin_list_sessions(request: web.Request) -> web.Response:
    _require_admin(request)
    sessions = await _auth(request).admin_list_sessions(request.match_info["id"])
    return json_response({"sessions": [session_json(session) for session in sessions]})


@routes.delete("/v1/admin/users/{id}/sessions")
async def admin_revoke_sessions(request: web.Request) -> web.Response:
    _require_admin(request)
    await _auth(request).admin_revoke_sessions(request.match_info["id"], _client(request))
    return web.Response(status=204)


@routes.post("/v1/admin/users/{id}/disable")
async def admin_disable(request: web.Request) -> web.Response:
    _require_admin(request)
    await _auth(request).admin_set_disabled(
        request.match_info["id"], disabled=True, client=_client(request)
    )
    return web.Response(status=204)


@routes.post("/v1/admin/users/{id}/enable")
async def admin_enable(request: web.Request) -> web.Response:
    _require_admin(request)
    await _auth(request).admin_set_disabled(
        request.match_info["id"], disabled=False, client=_client(request)
    )
    return web.Response(status=204)


# --- keys and health -------------------------------------------------------------------------


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    return json_response(
        request.app[KEYS].jwks(), headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"}
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    async with request.app[ENGINE].connect() as conn:
        revision = await current_revision(conn)
        if not await failover.takes_writes(conn):
            # A pooled connection to a demoted primary: drop it, and say not ready.
            await conn.invalidate()
            raise ServiceUnavailable("The database server does not accept writes.")
    if revision != request.app[HEAD_REVISION]:
        raise ServiceUnavailable("The database schema is not at the newest migration.")
    return json_response({"status": "ready"})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type=JSON)
