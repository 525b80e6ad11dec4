"""CORS for front ends on other origins: exact allow-list, credentials, preflights, Vary."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import PASSWORD, Client, bearer, register, signed_in

from service.settings.browsers import BrowserSettings

APP = "http://localhost:3000"
OTHER = "https://evil.example"


@pytest.fixture
async def cors_client(make_client: Any) -> Client:
    client: Client = await make_client(browsers=BrowserSettings(cors_origins=frozenset({APP})))
    return client


def _cors_headers(response: Any) -> set[str]:
    return {name.lower() for name in response.headers if name.lower().startswith("access-control")}


def _preflight(method: str, origin: str = APP, headers: str = "content-type") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


async def test_preflight_of_a_listed_origin_is_204_with_the_routes_methods(
    cors_client: Client,
) -> None:
    response = await cors_client.options(
        "/v1/login", headers=_preflight("POST", headers="content-type,x-csrf-token")
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == APP
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    allowed = {h.strip() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"Authorization", "Content-Type", "X-CSRF-Token", "X-Request-ID"}
    assert int(response.headers["Access-Control-Max-Age"]) > 0
    assert "Origin" in response.headers["Vary"]
    # A route with several methods lists them all.
    response = await cors_client.options("/v1/me", headers=_preflight("DELETE"))
    assert response.status == 204
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET", "DELETE"}


async def test_preflights_of_sub_application_routes_are_answered_too(cors_client: Client) -> None:
    response = await cors_client.options(
        "/v1/admin/users/00000000-0000-0000-0000-000000000000/sessions",
        headers=_preflight("DELETE", headers="authorization"),
    )
    assert response.status == 204
    assert "DELETE" in response.headers["Access-Control-Allow-Methods"]


async def test_an_unlisted_origin_gets_no_cors_header_at_all(cors_client: Client) -> None:
    response = await cors_client.options("/v1/login", headers=_preflight("POST", OTHER))
    assert _cors_headers(response) == set()
    assert response.status == 405
    await register(cors_client)
    response = await cors_client.post(
        "/v1/login",
        json={"email": "ada@example.com", "password": PASSWORD},
        headers={"Origin": OTHER},
    )
    assert response.status == 200 and _cors_headers(response) == set()
    assert "Origin" in response.headers["Vary"]  # a cache must still tell the origins apart


async def test_every_answer_to_a_listed_origin_carries_the_headers(cors_client: Client) -> None:
    tokens = await signed_in(cors_client)
    me = await cors_client.get("/v1/me", headers={**bearer(tokens), "Origin": APP})
    missing = await cors_client.get("/v1/me", headers={"Origin": APP})
    unknown = await cors_client.get("/v1/nothing-here", headers={"Origin": APP})
    for response, status in [(me, 200), (missing, 401), (unknown, 404)]:
        assert response.status == status
        assert response.headers["Access-Control-Allow-Origin"] == APP
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in response.headers["Vary"]
    assert "WWW-Authenticate" in missing.headers["Access-Control-Expose-Headers"]


async def test_oauth_paths_are_covered_by_path(cors_client: Client) -> None:
    # The /oauth routes may not exist in this build: the headers go by path, so even the 404 has
    # them, and a route added later is covered without registering anything.
    response = await cors_client.post("/oauth/token", headers={"Origin": APP})
    assert response.headers["Access-Control-Allow-Origin"] == APP


async def test_other_paths_and_no_allow_list_get_no_cors_headers(
    cors_client: Client, client: Client
) -> None:
    response = await cors_client.get("/healthz", headers={"Origin": APP})
    assert _cors_headers(response) == set()
    response = await client.options("/v1/login", headers=_preflight("POST"))
    assert response.status == 405 and _cors_headers(response) == set()
