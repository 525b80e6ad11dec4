"""The admin routes, mounted as a sub-application at /v1/admin whose own middleware demands the
admin key: 404 while none is configured, 401 unless the bearer is the key."""

from __future__ import annotations

import hmac

from aiohttp import web
from aiohttp.typedefs import Handler

from service.domain.errors import InvalidToken, NotFound
from service.web.appkeys import SETTINGS
from service.web.caller import client, flows
from service.web.client import bearer_token
from service.web.events import page_request, page_response
from service.web.responses import json_response, session_json

PREFIX = "/v1/admin"

routes = web.RouteTableDef()


@web.middleware
async def require_admin_key(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = request.config_dict[SETTINGS].admin_key
    if key is None:
        raise NotFound()
    presented = bearer_token(request) or ""
    if not hmac.compare_digest(presented.encode("utf-8", "replace"), key.encode("utf-8")):
        raise InvalidToken()
    return await handler(request)


@routes.get("/users/{id}/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    sessions = await flows(request).admin.list_sessions(request.match_info["id"])
    return json_response({"sessions": [session_json(session) for session in sessions]})


@routes.delete("/users/{id}/sessions")
async def revoke_sessions(request: web.Request) -> web.Response:
    await flows(request).admin.revoke_sessions(request.match_info["id"], client(request))
    return web.Response(status=204)


@routes.post("/users/{id}/disable")
async def disable(request: web.Request) -> web.Response:
    await flows(request).admin.set_disabled(
        request.match_info["id"], disabled=True, client=client(request)
    )
    return web.Response(status=204)


@routes.post("/users/{id}/enable")
async def enable(request: web.Request) -> web.Response:
    await flows(request).admin.set_disabled(
        request.match_info["id"], disabled=False, client=client(request)
    )
    return web.Response(status=204)


@routes.get("/users/{id}/events")
async def list_events(request: web.Request) -> web.Response:
    limit, position = page_request(request)
    page = await flows(request).admin.list_events(request.match_info["id"], limit, position)
    return page_response(page)


def admin_app(client_max_size: int) -> web.Application:
    app = web.Application(middlewares=[require_admin_key], client_max_size=client_max_size)
    app.add_routes(routes)
    return app
