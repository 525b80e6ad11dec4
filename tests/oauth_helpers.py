"""Small flows that the OAuth endpoint tests share (form-encoded requests, RFC 6749 errors)."""

from __future__ import annotations

import base64
from typing import Any

from helpers import Client

INTROSPECTOR = ("orders-api", "orders-api-secret-0123456789")
CLIENTS_ENV = f"{INTROSPECTOR[0]}:{INTROSPECTOR[1]}"


def basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


async def oauth_refresh(client: Client, token: str, **extra: str) -> Any:
    return await client.post(
        "/oauth/token", data={"grant_type": "refresh_token", "refresh_token": token, **extra}
    )


async def introspect(client: Client, token: str, auth: tuple[str, str] = INTROSPECTOR) -> Any:
    response = await client.post("/oauth/introspect", data={"token": token}, headers=basic(*auth))
    assert response.status == 200, await response.text()
    return await response.json()


async def oauth_error_of(response: Any) -> str:
    """The RFC 6749 section 5.2 error code (the body also has `message`, like every route)."""
    body = await response.json()
    assert set(body) == {"error", "error_description", "message"}, body
    assert body["error_description"] == body["message"]
    assert response.content_type == "application/json"
    return str(body["error"])
