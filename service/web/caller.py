"""The caller of a request, as the web layer learns it: from an access token (the
`authenticated` decorator) or from what a login, refresh or logout returned. Bound to the
request log here, at the edge, so that no flow carries ids for the log."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from service.domain.views import ClientInfo, Principal
from service.flows.wiring import Flows
from service.ops import logs
from service.web.appkeys import FLOWS, SETTINGS
from service.web.client import bearer_token, client_info

ProtectedHandler = Callable[[web.Request, Principal], Awaitable[web.StreamResponse]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def flows(request: web.Request) -> Flows:
    return request.config_dict[FLOWS]


def client(request: web.Request) -> ClientInfo:
    return client_info(request, request.config_dict[SETTINGS].trusted_proxies)


def bind_caller(user_id: uuid.UUID, session_id: uuid.UUID | None) -> None:
    logs.bind(user_id=str(user_id), session_id=None if session_id is None else str(session_id))


def authenticated(handler: ProtectedHandler) -> Handler:
    """Runs `handler` with the caller's Principal: a valid bearer access token of a live
    session; InvalidToken (401) otherwise, before the body is read."""

    @functools.wraps(handler)
    async def with_principal(request: web.Request) -> web.StreamResponse:
        principal = await flows(request).authenticator.authenticate(bearer_token(request))
        bind_caller(principal.user.id, principal.session_id)
        return await handler(request, principal)

    return with_principal
