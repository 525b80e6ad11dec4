"""Route handlers of the caller's own account: parse the request, call one flow, shape the
response. Nothing more. (Admin routes: service/web/admin.py; audit trail: events.py.)"""

from __future__ import annotations

from aiohttp import web

from service.db import failover
from service.domain.errors import InvalidGrant, InvalidToken, ServiceUnavailable
from service.domain.views import IssuedTokens, Principal
from service.ops.migrate import current_revision
from service.web import schemas
from service.web.appkeys import ENGINE, HEAD_REVISION, KEYS, OPENAPI, SETTINGS
from service.web.caller import authenticated, bind_caller, client, flows
from service.web.client import bearer_token
from service.web.cookies import (
    REFRESH_COOKIE,
    clear_refresh_cookie,
    cookie_credential,
    set_refresh_cookie,
)
from service.web.responses import JSON, json_response, session_json, tokens_json, user_json

JWKS_MAX_AGE = 300

routes = web.RouteTableDef()


async def _body(request: web.Request, model: type[schemas.Body], *, required: bool) -> schemas.Body:
    return schemas.parse_body(await request.read(), model, required=required)


def _token_response(
    request: web.Request, tokens: IssuedTokens, *, cookie: bool, status: int = 200
) -> web.Response:
    bind_caller(tokens.user.id, tokens.session_id)
    response = json_response(tokens_json(tokens, include_refresh_token=not cookie), status)
    response.headers["Cache-Control"] = "no-store"
    if cookie:
        settings = request.config_dict[SETTINGS]
        set_refresh_cookie(response, settings, tokens.refresh_token, tokens.refresh_expires_in)
    return response


# --- accounts and tokens ---------------------------------------------------------------------


@routes.post("/v1/register")
async def register(request: web.Request) -> web.Response:
    body = await _body(request, schemas.RegisterBody, required=True)
    user = await flows(request).accounts.register(body.email, body.password, client(request))
    return json_response({"user": user_json(user)}, status=201)


@routes.post("/v1/login")
async def login(request: web.Request) -> web.Response:
    body = await _body(request, schemas.LoginBody, required=True)
    tokens = await flows(request).login.login(
        body.email,
        body.password,
        client(request),
        device_name=body.device_name,
        platform=body.platform,
    )
    return _token_response(request, tokens, cookie=body.transport == "cookie")


@routes.post("/v1/refresh")
async def refresh(request: web.Request) -> web.Response:
    body = await _body(request, schemas.RefreshBody, required=False)
    token, by_cookie = body.refresh_token, False
    if token is None:
        token, by_cookie = cookie_credential(request, request.config_dict[SETTINGS]), True
        if token is None:
            raise InvalidGrant()
    tokens = await flows(request).refresh.refresh(token, client(request))
    return _token_response(request, tokens, cookie=by_cookie)


@routes.post("/v1/logout")
async def logout(request: web.Request) -> web.Response:
    body = await _body(request, schemas.LogoutBody, required=False)
    the_flows = flows(request)
    access_token = bearer_token(request)
    if access_token is not None or "Authorization" in request.headers:
        claims = the_flows.authenticator.verify_access_token(access_token)
        named = await the_flows.logout.with_access_token(claims, body.scope, client(request))
    else:
        token = body.refresh_token
        if token is None:
            token = cookie_credential(request, request.config_dict[SETTINGS])
        if token is None:
            raise InvalidToken()
        named = await the_flows.logout.with_refresh_token(token, body.scope, client(request))
    bind_caller(named.user_id, named.session_id)
    response = web.Response(status=204)
    if REFRESH_COOKIE in request.cookies:
        clear_refresh_cookie(response, request.config_dict[SETTINGS])
    return response


# --- the caller's account and sessions -------------------------------------------------------


@routes.get("/v1/me")
@authenticated
async def me(request: web.Request, principal: Principal) -> web.Response:
    return json_response(
        {"user": user_json(principal.user), "session_id": str(principal.session_id)}
    )


@routes.delete("/v1/me")
@authenticated
async def delete_me(request: web.Request, principal: Principal) -> web.Response:
    body = await _body(request, schemas.DeleteAccountBody, required=True)
    await flows(request).accounts.delete_account(principal, body.password, client(request))
    return web.Response(status=204)


@routes.get("/v1/sessions")
@authenticated
async def list_sessions(request: web.Request, principal: Principal) -> web.Response:
    sessions = await flows(request).sessions.list_live(
        principal.user.id, current=principal.session_id
    )
    return json_response({"sessions": [session_json(session) for session in sessions]})


@routes.delete("/v1/sessions/{id}")
@authenticated
async def delete_session(request: web.Request, principal: Principal) -> web.Response:
    await flows(request).sessions.end(principal, request.match_info["id"], client(request))
    return web.Response(status=204)


@routes.post("/v1/password")
@authenticated
async def change_password(request: web.Request, principal: Principal) -> web.Response:
    body = await _body(request, schemas.PasswordChangeBody, required=True)
    await flows(request).accounts.change_password(
        principal, body.current_password, body.new_password, client(request)
    )
    return web.Response(status=204)


# --- keys and health -------------------------------------------------------------------------


@routes.get("/.well-known/jwks.json")
async def jwks(request: web.Request) -> web.Response:
    return json_response(
        request.config_dict[KEYS].jwks(),
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    async with request.config_dict[ENGINE].connect() as conn:
        revision = await current_revision(conn)
        if not await failover.takes_writes(conn):
            # A pooled connection to a demoted primary: drop it, and say not ready.
            await conn.invalidate()
            raise ServiceUnavailable("The database server does not accept writes.")
    if revision != request.config_dict[HEAD_REVISION]:
        raise ServiceUnavailable("The database schema is not at the newest migration.")
    return json_response({"status": "ready"})


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.config_dict[OPENAPI], content_type=JSON)
