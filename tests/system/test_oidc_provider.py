"""End to end against a real, independently written OpenID Connect provider: the `oidc-provider`
npm package (tests/node/provider, installed by .ci/run with `npm ci`), run as a Node process on a
free loopback port. The test drives its real authorization-code flow with PKCE over HTTP (its
login and consent pages), signs in to Rotor with the ID token it issues, then restarts the
provider with a new signing key (a key rotation) and signs in again."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import secrets
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import jwt
import pytest
from conftest import FakeClock, MakeClient
from helpers import bearer
from servers import free_port

from service.settings.oidc import OidcSettings, Provider

pytestmark = pytest.mark.slow

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "node" / "provider"
CLIENT_ID = "rotor-test"
CLIENT_SECRET = "rotor-test-secret"
START_TIMEOUT = 30


@dataclass
class NodeProvider:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        # Fails, never skips: CI installs the package, so a missing one is a broken setup.
        assert (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir(), (
            "oidc-provider is not installed: run `npm ci --prefix tests/node/provider`"
        )
        self.process = self._spawn()
        assert self.process.stdout is not None
        line = await asyncio.wait_for(
            asyncio.to_thread(self.process.stdout.readline), START_TIMEOUT
        )
        assert line.decode().strip() == f"ready {self.issuer}", line

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["node", "provider.mjs", str(self.port)],
            cwd=PROVIDER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None


@pytest.fixture
async def node_provider() -> AsyncIterator[NodeProvider]:
    provider = NodeProvider(free_port())
    await provider.start()
    yield provider
    provider.stop()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_FORM = re.compile(r'<form[^>]*action="([^"]+)"', re.IGNORECASE)
_PROMPT = re.compile(r'name="prompt" value="([^"]+)"')


async def authorization_code_flow(issuer: str, nonce: str) -> str:
    """Sign in as the provider's static account through its pages; the ID token it issues."""
    redirect_uri = issuer + "/callback"
    verifier = secrets.token_urlsafe(48)
    challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    params = {
        "client_id": CLIENT_ID,
        "response_type": "code",
        "scope": "openid email",
        "redirect_uri": redirect_uri,
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    jar = aiohttp.CookieJar(unsafe=True)  # cookies of an IP-address host
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        response = await http.get(issuer + "/auth", params=params, allow_redirects=False)
        code = None
        for _ in range(10):
            if response.status in (302, 303):
                location = urljoin(str(response.url), response.headers["Location"])
                if location.startswith(redirect_uri):
                    query = parse_qs(urlsplit(location).query)
                    assert query["state"] == [state]
                    code = query["code"][0]
                    break
                response = await http.get(location, allow_redirects=False)
                continue
            assert response.status == 200, await response.text()
            page = await response.text()
            action = urljoin(str(response.url), unescape(_FORM.search(page).group(1)))  # type: ignore[union-attr]
            prompt = _PROMPT.search(page).group(1)  # type: ignore[union-attr]
            form = {"prompt": prompt}
            if prompt == "login":
                form |= {"login": "ada", "password": "any password"}
            response = await http.post(action, data=form, allow_redirects=False)
        assert code is not None, "the provider never redirected back with a code"
        token_response = await http.post(
            issuer + "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        assert token_response.status == 200, await token_response.text()
        body: dict[str, Any] = await token_response.json()
    return str(body["id_token"])


async def test_sign_in_with_oidc_provider_and_survive_its_key_rotation(
    make_client: MakeClient, node_provider: NodeProvider, clock: FakeClock
) -> None:
    clock.now = datetime.now(UTC)  # the provider's tokens carry real times
    client = await make_client(
        oidc=OidcSettings(providers=(Provider("local", node_provider.issuer, (CLIENT_ID,)),))
    )
    nonce = secrets.token_urlsafe(16)
    id_token = await authorization_code_flow(node_provider.issuer, nonce)
    first_kid = jwt.get_unverified_header(id_token)["kid"]
    response = await client.post(
        "/v1/login/idtoken", json={"provider": "local", "id_token": id_token, "nonce": nonce}
    )
    assert response.status == 200, await response.text()
    first = await response.json()
    assert first["user"]["email"] == "ada@example.com"
    assert first["user"]["email_verified"] is True
    identities = await (await client.get("/v1/identities", headers=bearer(first))).json()
    assert [(i["provider"], i["subject"]) for i in identities["identities"]] == [("local", "ada")]
    # The same token again is a replay.
    response = await client.post(
        "/v1/login/idtoken", json={"provider": "local", "id_token": id_token, "nonce": nonce}
    )
    assert response.status == 401

    # Rotation: the provider restarts with a new key (the old one is no longer published).
    node_provider.stop()
    await node_provider.start()
    nonce = secrets.token_urlsafe(16)
    id_token = await authorization_code_flow(node_provider.issuer, nonce)
    assert jwt.get_unverified_header(id_token)["kid"] != first_kid
    clock.advance(61)  # past the once-a-minute refetch limit since the first fetch
    response = await client.post(
        "/v1/login/idtoken", json={"provider": "local", "id_token": id_token, "nonce": nonce}
    )
    assert response.status == 200, await response.text()
    second = await response.json()
    assert second["user"]["id"] == first["user"]["id"]
    assert second["session_id"] != first["session_id"]
