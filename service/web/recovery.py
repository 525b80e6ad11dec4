"""Routes of account recovery and email verification (no authentication: the code is the
proof). forgot and resend answer 202 {} whatever the address."""

from __future__ import annotations

from aiohttp import web

from service.web import schemas
from service.web.caller import client, flows
from service.web.responses import json_response, user_json

routes = web.RouteTableDef()


async def _body(request: web.Request, model: type[schemas.Body]) -> schemas.Body:
    return schemas.parse_body(await request.read(), model, required=True)


@routes.post("/v1/password/forgot")
async def forgot_password(request: web.Request) -> web.Response:
    body = await _body(request, schemas.EmailBody)
    await flows(request).recovery.forgot(body.email, client(request))
    return json_response({}, status=202)


@routes.post("/v1/password/reset")
async def reset_password(request: web.Request) -> web.Response:
    body = await _body(request, schemas.PasswordResetBody)
    await flows(request).recovery.reset(body.email, body.code, body.new_password, client(request))
    return web.Response(status=204)


@routes.post("/v1/email/verify")
async def verify_email(request: web.Request) -> web.Response:
    body = await _body(request, schemas.EmailVerifyBody)
    user = await flows(request).recovery.verify(body.email, body.code)
    return json_response({"user": user_json(user)})


@routes.post("/v1/email/verify/resend")
async def resend_verification(request: web.Request) -> web.Response:
    body = await _body(request, schemas.EmailBody)
    await flows(request).recovery.resend(body.email, client(request))
    return json_response({}, status=202)
