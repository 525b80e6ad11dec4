"""Sign in with an identity provider's ID token, and the caller's linked identities:
`POST /v1/login/idtoken`, `GET`/`POST /v1/identities`, `DELETE /v1/identities/{provider}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.domain.views import IdentityView, Principal
from service.web import schemas
from service.web.caller import authenticated, client, flows
from service.web.handlers import _token_response
from service.web.responses import json_response, timestamp

routes = web.RouteTableDef()


def identity_json(identity: IdentityView) -> dict[str, Any]:
    return {
        "provider": identity.provider,
        "subject": identity.subject,
        "email": identity.email,
        "created_at": timestamp(identity.created_at),
    }


@routes.post("/v1/login/idtoken")
async def login_with_id_token(request: web.Request) -> web.Response:
    body = schemas.parse_body(await request.read(), schemas.IdTokenLoginBody, required=True)
    tokens = await flows(request).identities.sign_in(
        body.provider,
        body.id_token,
        body.nonce,
        client(request),
        device_name=body.device_name,
        platform=body.platform,
    )
    return _token_response(request, tokens, cookie=body.transport == "cookie")


@routes.get("/v1/identities")
@authenticated
async def list_identities(request: web.Request, principal: Principal) -> web.Response:
    identities = await flows(request).identities.list(principal.user.id)
    return json_response({"identities": [identity_json(one) for one in identities]})


@routes.post("/v1/identities")
@authenticated
async def link_identity(request: web.Request, principal: Principal) -> web.Response:
    body = schemas.parse_body(await request.read(), schemas.LinkIdentityBody, required=True)
    identity = await flows(request).identities.link(
        principal, body.provider, body.id_token, body.nonce, client(request)
    )
    return json_response({"identity": identity_json(identity)}, status=201)


@routes.delete("/v1/identities/{provider}")
@authenticated
async def unlink_identity(request: web.Request, principal: Principal) -> web.Response:
    await flows(request).identities.unlink(
        principal, request.match_info["provider"], client(request)
    )
    return web.Response(status=204)
