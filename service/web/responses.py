"""JSON responses: the contract's error shape and its objects (docs/reference/objects.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from service.domain.views import IssuedTokens, SessionView, UserView

JSON = "application/json"


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type=JSON, headers=headers)


def error_response(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    return json_response({"error": code, "message": message, **extra}, status, headers)


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, to the second: 2026-11-27T15:04:05Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user_json(user: UserView) -> dict[str, str | bool]:
    return {
        "id": str(user.id),
        "email": user.email,
        "email_verified": user.email_verified,
        "created_at": timestamp(user.created_at),
    }


def tokens_json(tokens: IssuedTokens, *, include_refresh_token: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": tokens.expires_in,
    }
    if include_refresh_token:
        body["refresh_token"] = tokens.refresh_token
    body.update(
        refresh_expires_in=tokens.refresh_expires_in,
        session_id=str(tokens.session_id),
        user=user_json(tokens.user),
    )
    return body


def session_json(session: SessionView) -> dict[str, Any]:
    return {
        "id": str(session.id),
        "device_name": session.device_name,
        "platform": session.platform,
        "user_agent": session.user_agent,
        "ip": session.ip,
        "created_at": timestamp(session.created_at),
        "last_used_at": timestamp(session.last_used_at),
        "expires_at": timestamp(session.expires_at),
        "current": session.current,
    }
