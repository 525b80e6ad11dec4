"""Small flows that many API tests share."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

PASSWORD = "correct horse battery staple"
Client = TestClient[Any, web.Application]


async def register(
    client: Client, email: str = "ada@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post("/v1/register", json={"email": email, "password": password})
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body["user"]


async def login(
    client: Client, email: str = "ada@example.com", password: str = PASSWORD, **extra: Any
) -> dict[str, Any]:
    response = await client.post("/v1/login", json={"email": email, "password": password, **extra})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def signed_in(client: Client, email: str = "ada@example.com", **extra: Any) -> dict[str, Any]:
    """Register and log in: the TokenResponse."""
    await register(client, email)
    return await login(client, email, **extra)


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def refresh(client: Client, token: str) -> Any:
    return await client.post("/v1/refresh", json={"refresh_token": token})


async def error_of(response: Any) -> str:
    body = await response.json()
    assert set(body) >= {"error", "message"}, body
    assert response.content_type == "application/json"
    return str(body["error"])
