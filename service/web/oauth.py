"""The standard OAuth 2.0 / OpenID Connect endpoints, so that off-the-shelf client libraries
and resource servers work with Rotor unchanged.

`/oauth/*` is a sub-application with its own error middleware: its errors have the shape of
RFC 6749 section 5.2 (`{"error", "error_description"}`, plus `message`, the same text, so that one
error handler fits every Rotor route). Its handlers only parse the form, call the flows that the
/v1 routes call (the same refresh rotation, logout and session check) and shape the answer.
The two metadata documents are routes of the main app (they live under /.well-known/).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from service.domain import errors
from service.domain.tokens import RefreshToken
from service.domain.views import Principal
from service.settings.oauth import issuer_url
from service.web.appkeys import SETTINGS
from service.web.caller import authenticated, bind_caller, client, flows
from service.web.responses import json_response

PREFIX = "/oauth"
FORM = "application/x-www-form-urlencoded"
# No form field of these endpoints needs more; parse_qsl stops beyond that many.
MAX_FIELDS = 32
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
METADATA_MAX_AGE = 300

routes = web.RouteTableDef()


class OAuthError(Exception):
    """An RFC 6749 section 5.2 error answer."""

    def __init__(
        self, status: int, code: str, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = headers or {}


def _invalid_request(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def oauth_error_response(error: OAuthError) -> web.Response:
    body = {"error": error.code, "error_description": error.description}
    return json_response({**body, "message": error.description}, error.status, error.headers)


def _from_auth_error(error: errors.AuthError) -> OAuthError:
    if isinstance(error, errors.InvalidGrant | errors.TokenReused):
        return OAuthError(400, "invalid_grant", error.message)
    if isinstance(error, errors.InvalidToken):
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        return OAuthError(401, error.code, error.message, challenge)
    if isinstance(error, errors.NotFound):
        return OAuthError(404, error.code, error.message)
    if isinstance(error, errors.ServiceUnavailable):
        retry = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        return OAuthError(503, error.code, error.message, retry)
    return _invalid_request(error.message)


_HTTP_ERRORS = {
    404: ("not_found", "No such route."),
    405: ("method_not_allowed", "This method is not allowed on this route."),
    413: ("payload_too_large", "The request body is larger than 64 KiB."),
}


@web.middleware
async def oauth_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Client errors in RFC 6749's shape; anything else (a database outage) goes on to the main
    app's error middleware."""
    try:
        return await handler(request)
    except OAuthError as exc:
        return oauth_error_response(exc)
    except errors.AuthError as exc:
        return oauth_error_response(_from_auth_error(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, description = _HTTP_ERRORS.get(exc.status, ("invalid_request", exc.reason))
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        return oauth_error_response(OAuthError(exc.status, code, description, headers))


async def _form(request: web.Request) -> dict[str, str]:
    """The form parameters (RFC 6749 section 3.2: form-encoded, each at most once)."""
    if request.content_type != FORM:
        raise _invalid_request(f"The body must be {FORM}.")
    try:
        text = (await request.read()).decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise _invalid_request("The body is not a valid UTF-8 form.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise _invalid_request(f"The parameter {name} appears more than once.")
        form[name] = value
    return form


def _required(form: dict[str, str], name: str) -> str:
    value = form.get(name, "")
    if not value:
        raise _invalid_request(f"The parameter {name} is missing.")
    return value


@routes.post("/token")
async def token(request: web.Request) -> web.Response:
    """RFC 6749 section 6: the refresh grant, on the rotation of POST /v1/refresh."""
    form = await _form(request)
    grant_type = _required(form, "grant_type")
    if grant_type != "refresh_token":
        raise OAuthError(
            400, "unsupported_grant_type", "Only grant_type=refresh_token is supported."
        )
    tokens = await flows(request).refresh.refresh(_required(form, "refresh_token"), client(request))
    bind_caller(tokens.user.id, tokens.session_id)
    body = {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
        "refresh_token": tokens.refresh_token,
    }
    return json_response(body, headers=NO_STORE)


@routes.post("/revoke")
async def revoke(request: web.Request) -> web.Response:
    """RFC 7009: a refresh token or an access token ends its session; 200 whatever the token
    (an unknown one included), as section 2.2 says."""
    the_flows, form = flows(request), await _form(request)
    raw = _required(form, "token")
    try:
        if RefreshToken.parse(raw) is not None:
            named = await the_flows.logout.with_refresh_token(raw, "local", client(request))
        else:
            claims = the_flows.authenticator.verify_access_token(raw)
            named = await the_flows.logout.with_access_token(claims, "local", client(request))
        bind_caller(named.user_id, named.session_id)
    except errors.InvalidToken:
        pass  # not a token of ours, or expired: nothing to end
    return web.Response(status=200, headers=NO_STORE)


def _basic_credentials(request: web.Request) -> tuple[str, tuple[str, ...]] | None:
    """The client id and the candidate secrets of an HTTP Basic header. RFC 6749 section 2.3.1
    form-encodes both before Base64 (as OAuth libraries do); a secret is also tried as sent, for
    clients that do not (curl -u)."""
    scheme, _, encoded = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    return unquote_plus(client_id), tuple({secret, unquote_plus(secret)})


def _require_introspection_client(request: web.Request) -> None:
    oauth = request.config_dict[SETTINGS].oauth
    if not oauth.introspection_clients:
        raise errors.NotFound()
    credentials = _basic_credentials(request)
    if credentials is None or not oauth.accepts(*credentials):
        raise OAuthError(
            401,
            "invalid_client",
            "Introspection needs HTTP Basic credentials of a configured client.",
            {"WWW-Authenticate": 'Basic realm="rotor", charset="UTF-8"'},
        )


@routes.post("/introspect")
async def introspect(request: web.Request) -> web.Response:
    """RFC 7662, for the resource servers of AUTH_INTROSPECTION_CLIENTS. An access token costs
    what GET /v1/me costs: its signature, then the batched session read."""
    _require_introspection_client(request)
    raw = _required(await _form(request), "token")
    the_flows, settings = flows(request), request.config_dict[SETTINGS]
    answer: dict[str, Any] = {"active": False}
    if RefreshToken.parse(raw) is not None:
        live = await the_flows.oauth.live_refresh_token(raw)
        if live is not None:
            answer = {
                "active": True,
                "sub": str(live.user_id),
                "sid": str(live.session_id),
                "exp": int(live.expires_at.timestamp()),
                "iss": settings.issuer,
                "token_type": "refresh_token",
            }
    else:
        try:
            claims = the_flows.authenticator.verify_access_token(raw)
            principal = await the_flows.authenticator.principal_of(claims)
        except errors.InvalidToken:
            pass
        else:
            answer = {
                "active": True,
                "sub": str(principal.user.id),
                "sid": str(principal.session_id),
                "exp": claims.expires_at,
                "iss": settings.issuer,
                "token_type": "access_token",
                "iat": claims.issued_at,
                "aud": settings.audience,
                "jti": claims.token_id,
            }
    return json_response(answer, headers=NO_STORE)


@routes.get("/userinfo")
@authenticated
async def userinfo(request: web.Request, principal: Principal) -> web.Response:
    user = principal.user
    body = {"sub": str(user.id), "email": user.email, "email_verified": user.email_verified}
    return json_response(body, headers={"Cache-Control": "no-store"})


def metadata(issuer: str, signing_alg: str) -> dict[str, Any]:
    """RFC 8414 / OpenID Connect Discovery metadata of this server as `issuer`."""
    base = issuer.rstrip("/")
    return {
        "issuer": issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}{PREFIX}/token",
        "revocation_endpoint": f"{base}{PREFIX}/revoke",
        "introspection_endpoint": f"{base}{PREFIX}/introspect",
        "userinfo_endpoint": f"{base}{PREFIX}/userinfo",
        "grant_types_supported": ["refresh_token"],
        # No authorization endpoint: sign-in is POST /v1/login, so no response type is offered.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [signing_alg],
        "claims_supported": ["sub", "email", "email_verified"],
    }


async def _metadata(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    issuer = issuer_url(settings.issuer)
    if issuer is None:
        # Not an issuer identifier that clients could check (the start-up log says so).
        raise errors.NotFound()
    return json_response(
        metadata(issuer, settings.jwt_alg),
        headers={"Cache-Control": f"public, max-age={METADATA_MAX_AGE}"},
    )


def install(app: web.Application, client_max_size: int) -> None:
    """Mount /oauth and add the two metadata documents to `app`."""
    app.router.add_get("/.well-known/openid-configuration", _metadata)
    app.router.add_get("/.well-known/oauth-authorization-server", _metadata)
    oauth = web.Application(middlewares=[oauth_error_middleware], client_max_size=client_max_size)
    oauth.add_routes(routes)
    app.add_subapp(PREFIX, oauth)
