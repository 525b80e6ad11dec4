"""Real OAuth/OIDC clients, written elsewhere and used as their users use them, against a real
`rotor serve` on loopback: Authlib (Python), openid-client and jose (Node, run as processes),
and the resource-server examples of docs/ (the very files the guide shows)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from authlib.integrations.requests_client import OAuth2Session
from helpers import PASSWORD
from oauth_helpers import CLIENTS_ENV, INTROSPECTOR
from servers import ROOT, ServerProcess, StartServer

from service.domain.keys import generate_private_key_pem

pytestmark = pytest.mark.slow

NODE_CLIENTS = ROOT / "tests" / "node" / "clients"
EXAMPLES = ROOT / "docs" / "examples"


async def _start(serve: StartServer, tmp_path: Path, **env: str) -> ServerProcess:
    key = tmp_path / "es256.pem"
    key.write_bytes(generate_private_key_pem("ES256"))
    return await serve(
        AUTH_ISSUER="http://127.0.0.1:{port}",
        AUTH_JWT_ALG="ES256",
        AUTH_JWT_PRIVATE_KEY_FILE=str(key),
        AUTH_INTROSPECTION_CLIENTS=CLIENTS_ENV,
        **env,
    )


async def _signed_in(server: ServerProcess) -> dict[str, Any]:
    # The run's database is shared by the tests of this process: one address per sign-up.
    email = f"ada-{uuid.uuid4().hex[:12]}@example.com"
    async with httpx.AsyncClient(base_url=server.url) as http:
        credentials = {"email": email, "password": PASSWORD}
        assert (await http.post("/v1/register", json=credentials)).status_code == 201
        response = await http.post("/v1/login", json=credentials)
        assert response.status_code == 200
        tokens: dict[str, Any] = response.json()
        return tokens


def _node(script: str, env: dict[str, str]) -> dict[str, Any]:
    """Run an ES module given as text from tests/node/clients (its imports resolve there)."""
    if not (NODE_CLIENTS / "node_modules" / "openid-client").is_dir():
        message = (
            "tests/node/clients/node_modules is missing: run npm ci --prefix tests/node/clients"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    node = shutil.which("node")
    assert node is not None, "node is not installed"
    done = subprocess.run(
        [node, "--input-type=module", "-"],
        input=script,
        cwd=NODE_CLIENTS,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_authlib_client_refreshes_revokes_and_introspects(
    serve: StartServer, tmp_path: Path
) -> None:
    server = await _start(serve, tmp_path)
    assert "AUTH_ISSUER" not in server.stderr()  # a loopback http issuer is fine
    tokens = await _signed_in(server)
    async with httpx.AsyncClient() as http:
        metadata = (await http.get(f"{server.url}/.well-known/oauth-authorization-server")).json()
    saved: list[dict[str, Any]] = []

    def update_token(token: dict[str, Any], refresh_token: str) -> None:
        saved.append({**token, "previous": refresh_token})

    # Authlib's requests client is synchronous: it blocks this test's loop, which serves nothing
    # (the server is another process).
    # The app's stored token, as if its access token had expired: Authlib refreshes it through
    # the discovered token endpoint before the request, then uses the new access token.
    stored = {**tokens, "expires_at": int(time.time()) - 1}
    with OAuth2Session(
        client_id="python-app",
        token=stored,
        token_endpoint=metadata["token_endpoint"],
        token_endpoint_auth_method="none",
        update_token=update_token,
    ) as app:
        me = app.get(metadata["userinfo_endpoint"], timeout=10)
        assert me.status_code == 200 and me.json()["sub"] == tokens["user"]["id"]
        assert len(saved) == 1 and saved[0]["previous"] == tokens["refresh_token"]
        rotated = saved[0]
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert rotated["access_token"] != tokens["access_token"]
        assert app.token["refresh_token"] == rotated["refresh_token"]
        # A fresh token is not refreshed again.
        assert app.get(metadata["userinfo_endpoint"], timeout=10).status_code == 200
        assert len(saved) == 1

        with OAuth2Session(*INTROSPECTOR) as resource_server:
            endpoint = metadata["introspection_endpoint"]

            def introspect(token: str) -> dict[str, Any]:
                response = resource_server.introspect_token(endpoint, token=token, timeout=10)
                assert response.status_code == 200
                answer: dict[str, Any] = response.json()
                return answer

            assert introspect(tokens["refresh_token"]) == {"active": False}  # rotated
            live = introspect(rotated["refresh_token"])
            assert live["active"] and live["token_type"] == "refresh_token"
            access = introspect(rotated["access_token"])
            assert access["active"] and access["sid"] == tokens["session_id"]

            revoked = app.revoke_token(
                metadata["revocation_endpoint"], token=rotated["refresh_token"], timeout=10
            )
            assert revoked.status_code == 200
            assert introspect(rotated["access_token"]) == {"active": False}
        assert app.get(metadata["userinfo_endpoint"], timeout=10).status_code == 401
    server.assert_no_unhandled_errors()


async def test_openid_client_and_jose(serve: StartServer, tmp_path: Path) -> None:
    server = await _start(serve, tmp_path)
    first = await _signed_in(server)
    env = {
        "ROTOR_ISSUER": server.url,
        "ROTOR_AUDIENCE": "rotor",
        "ROTOR_CLIENT_ID": INTROSPECTOR[0],
        "ROTOR_CLIENT_SECRET": INTROSPECTOR[1],
    }
    seen = _node(
        (NODE_CLIENTS / "app-client.mjs").read_text(),
        {**env, "REFRESH_TOKEN": first["refresh_token"]},
    )
    assert seen["metadata"]["issuer"] == server.url
    assert seen["metadata"]["id_token_signing_alg_values_supported"] == ["ES256"]
    refreshed = seen["refreshed"]
    assert refreshed["token_type"] == "bearer"  # openid-client lower-cases it
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert 0 < refreshed["expires_in"] <= 900
    access, refresh = seen["introspected"]["access"], seen["introspected"]["refresh"]
    assert access["active"] and access["token_type"] == "access_token"
    assert access["sub"] == first["user"]["id"] and access["sid"] == first["session_id"]
    assert refresh["active"] and refresh["token_type"] == "refresh_token"
    assert seen["introspected"]["spent"] == {"active": False}
    assert seen["introspected"]["revoked"] == {"active": False}
    assert seen["reuse"] == {"name": "ResponseBodyError", "error": "invalid_grant", "status": 400}

    # The Node resource-server example of docs/resource-servers.md, verbatim: jose's
    # createRemoteJWKSet on the discovered jwks_uri, then openid-client's introspection.
    second = await _signed_in(server)
    example = (EXAMPLES / "resource-server.mjs").read_text()
    driver = (NODE_CLIENTS / "drive-resource-server.mjs").read_text()
    result = _node(
        example + "\n" + driver,
        {**env, "ACCESS_TOKEN": second["access_token"], "LOGOUT_URL": f"{server.url}/v1/logout"},
    )
    assert result["verified"]["sub"] == second["user"]["id"]
    assert result["verified"]["sid"] == second["session_id"]
    assert result["introspected"]["sid"] == second["session_id"]
    # After logout the JWKS check still passes (until the token expires); introspection not.
    assert result["afterLogout"] == {"verified": second["user"]["id"], "introspected": None}
    server.assert_no_unhandled_errors()


async def test_python_resource_server_example(serve: StartServer, tmp_path: Path) -> None:
    server = await _start(serve, tmp_path)
    tokens = await _signed_in(server)
    spec = importlib.util.spec_from_file_location(
        "resource_server", EXAMPLES / "resource_server.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rotor = example.RotorTokens(server.url, "rotor", *INTROSPECTOR)
    claims = rotor.verify(tokens["access_token"])
    assert claims["sub"] == tokens["user"]["id"] and claims["sid"] == tokens["session_id"]
    assert rotor.introspect(tokens["access_token"])["sid"] == tokens["session_id"]
    assert rotor.introspect(tokens["refresh_token"]) is None  # not an access token
    async with httpx.AsyncClient() as http:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await http.post(f"{server.url}/v1/logout", headers=bearer)).status_code == 204
    assert rotor.verify(tokens["access_token"])["sub"] == tokens["user"]["id"]
    assert rotor.introspect(tokens["access_token"]) is None
    server.assert_no_unhandled_errors()


async def test_no_metadata_and_a_start_up_warning_without_an_issuer_url(
    serve: StartServer,
) -> None:
    server = await serve()  # AUTH_ISSUER left at its default, "rotor"
    assert "AUTH_ISSUER" in server.stderr()
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
        ]:
            response = await http.get(path)
            assert response.status_code == 404 and response.json()["error"] == "not_found"
        # The /oauth routes are there all the same.
        response = await http.post("/oauth/token", data={"grant_type": "refresh_token"})
        assert response.status_code == 400 and response.json()["error"] == "invalid_request"
