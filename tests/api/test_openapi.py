"""GET /openapi.json: the checked-in document, served as JSON to anyone."""

from __future__ import annotations

from helpers import Client

from service.web.openapi import load_document


async def test_openapi_document_is_served_as_json(client: Client) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    document = await response.json()
    assert document == load_document()
    assert document["openapi"] == "3.1.0"
    assert "/openapi.json" in document["paths"]


async def test_openapi_document_needs_no_credentials_and_ignores_bad_ones(client: Client) -> None:
    response = await client.get("/openapi.json", headers={"Authorization": "Bearer garbage"})
    assert response.status == 200
    response = await client.post("/openapi.json")
    assert response.status == 405
    assert (await response.json())["error"] == "method_not_allowed"
