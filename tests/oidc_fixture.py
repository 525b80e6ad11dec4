"""A test identity provider: its own discovery document and JWKS served over HTTP on a free
loopback port, and ID tokens signed with its keys (RS256 and ES256) with any claims a test wants."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

CLIENT_ID = "com.example.app"


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: Any

    def public_jwk(self) -> dict[str, Any]:
        algorithm = RSAAlgorithm if self.alg == "RS256" else ECAlgorithm
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}


def new_key(alg: str = "RS256") -> SigningKey:
    if alg == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(kid=uuid.uuid4().hex[:12], alg=alg, private=private)


@dataclass
class FakeProvider:
    """Serves /.well-known/openid-configuration and /jwks; counts the JWKS fetches."""

    clock: Callable[[], datetime]
    keys: list[SigningKey] = field(default_factory=lambda: [new_key("RS256"), new_key("ES256")])
    cache_control: str | None = "public, max-age=3600"
    hang: bool = False
    jwks_fetches: int = 0
    server: TestServer | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    issuer: str = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        self.issuer = str(self.server.make_url("")).rstrip("/")

    async def close(self) -> None:
        self.released.set()
        if self.server is not None:
            await self.server.close()

    async def _discovery(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.released.wait()
        return web.json_response({"issuer": self.issuer, "jwks_uri": self.issuer + "/jwks"})

    async def _jwks(self, request: web.Request) -> web.Response:
        if self.hang:
            await self.released.wait()
        self.jwks_fetches += 1
        headers = {} if self.cache_control is None else {"Cache-Control": self.cache_control}
        return web.json_response({"keys": [key.public_jwk() for key in self.keys]}, headers=headers)

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(self.clock().timestamp())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": "subject-1",
            "iat": now,
            "exp": now + 600,
            "email": "ada@example.com",
            "email_verified": True,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        *,
        key: SigningKey | None = None,
        headers: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> str:
        key = key or self.keys[0]
        return jwt.encode(
            self.claims(**overrides),
            key.private,
            algorithm=key.alg,
            headers={"kid": key.kid, **(headers or {})},
        )


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
