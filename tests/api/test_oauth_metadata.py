"""GET /.well-known/openid-configuration and /.well-known/oauth-authorization-server."""

from __future__ import annotations

import pytest
from conftest import MakeClient
from helpers import error_of

DOCUMENTS = ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]


@pytest.mark.parametrize("issuer", ["https://auth.example.com", "http://127.0.0.1:8080"])
async def test_metadata_built_from_the_configuration(make_client: MakeClient, issuer: str) -> None:
    client = await make_client(issuer=issuer)
    for path in DOCUMENTS:
        response = await client.get(path)
        assert response.status == 200
        document = await response.json()
        assert document["issuer"] == issuer
        assert document["jwks_uri"] == f"{issuer}/.well-known/jwks.json"
        for name, route in [
            ("token_endpoint", "token"),
            ("revocation_endpoint", "revoke"),
            ("introspection_endpoint", "introspect"),
            ("userinfo_endpoint", "userinfo"),
        ]:
            assert document[name] == f"{issuer}/oauth/{route}"
        assert document["grant_types_supported"] == ["refresh_token"]
        assert document["token_endpoint_auth_methods_supported"] == ["none"]
        assert document["id_token_signing_alg_values_supported"] == ["HS256"]
        assert document["subject_types_supported"] == ["public"]


async def test_issuer_with_a_path_keeps_it(make_client: MakeClient) -> None:
    client = await make_client(issuer="https://example.com/auth/")
    document = await (await client.get(DOCUMENTS[0])).json()
    assert document["issuer"] == "https://example.com/auth/"
    assert document["token_endpoint"] == "https://example.com/auth/oauth/token"


@pytest.mark.parametrize(
    "issuer",
    [
        "rotor",
        "http://auth.example.com",
        "http://10.0.0.1:8080",
        "https://auth.example.com?x=1",
        "https://auth.example.com#frag",
        "https://",
        "ftp://auth.example.com",
    ],
)
async def test_no_metadata_without_an_issuer_url(make_client: MakeClient, issuer: str) -> None:
    client = await make_client(issuer=issuer)
    for path in DOCUMENTS:
        response = await client.get(path)
        assert response.status == 404 and await error_of(response) == "not_found"
    # The /oauth routes exist all the same.
    response = await client.post("/oauth/token", data={"grant_type": "refresh_token"})
    assert response.status == 400
