"""Asymmetric signing, key rotation and the JWKS a resource server verifies with."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from helpers import Client, bearer, signed_in

from service.domain.keys import generate_private_key_pem, load_asymmetric_key_set


def _key_file(tmp_path: Path, alg: str, name: str = "key.pem") -> Path:
    path = tmp_path / f"{alg}-{name}"
    path.write_bytes(generate_private_key_pem(alg))
    return path


async def test_hmac_secret_is_never_published(client: Client) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status == 200 and await response.json() == {"keys": []}
    assert "max-age=" in response.headers["Cache-Control"]


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
async def test_resource_server_verifies_with_nothing_but_the_jwks_url(
    make_client: Any, tmp_path: Path, alg: str, clock: Any
) -> None:
    clock.now = datetime.now(UTC)  # PyJWT checks exp against the real clock
    keys = load_asymmetric_key_set(alg, _key_file(tmp_path, alg))
    client = await make_client(keys=keys, jwt_alg=alg)
    tokens = await signed_in(client)
    assert jwt.get_unverified_header(tokens["access_token"])["alg"] == alg
    jwks_url = str(client.make_url("/.well-known/jwks.json"))
    jwk_client = jwt.PyJWKClient(jwks_url)
    # PyJWKClient does blocking I/O; the test server runs on this loop, so use a thread.
    signing_key = await asyncio.to_thread(
        jwk_client.get_signing_key_from_jwt, tokens["access_token"]
    )
    claims = jwt.decode(
        tokens["access_token"], signing_key.key, algorithms=[alg], audience="rotor", issuer="rotor"
    )
    assert claims["sub"] == tokens["user"]["id"]
    published = (await (await client.get("/.well-known/jwks.json")).json())["keys"]
    assert len(published) == 1 and published[0]["alg"] == alg and "d" not in published[0]


async def test_rotation_keeps_old_tokens_valid(make_client: Any, tmp_path: Path) -> None:
    old_file, new_file = (
        _key_file(tmp_path, "EdDSA", "old.pem"),
        _key_file(tmp_path, "EdDSA", "new.pem"),
    )
    old_client = await make_client(keys=load_asymmetric_key_set("EdDSA", old_file), jwt_alg="EdDSA")
    tokens = await signed_in(old_client)
    # Step 2 of the rotation: the new key signs, the old one is kept for verification.
    rotated = load_asymmetric_key_set("EdDSA", new_file, (old_file,))
    new_client = await make_client(keys=rotated, jwt_alg="EdDSA")
    assert (await new_client.get("/v1/me", headers=bearer(tokens))).status == 200
    kids = [
        key["kid"]
        for key in (await (await new_client.get("/.well-known/jwks.json")).json())["keys"]
    ]
    assert len(kids) == 2 and kids[0] == rotated.signing.kid
    # Step 3: the old key dropped, its tokens are refused.
    dropped = await make_client(keys=load_asymmetric_key_set("EdDSA", new_file), jwt_alg="EdDSA")
    assert (await dropped.get("/v1/me", headers=bearer(tokens))).status == 401


async def test_algorithm_confusion_is_rejected(make_client: Any, tmp_path: Path) -> None:
    keys = load_asymmetric_key_set("RS256", _key_file(tmp_path, "RS256"))
    client = await make_client(keys=keys, jwt_alg="RS256")
    tokens = await signed_in(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    header = {"typ": "at+jwt", "kid": keys.signing.kid}
    public_pem = keys.signing.public.public_bytes(
        encoding=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).Encoding.PEM,
        format=__import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["x"]
        ).PublicFormat.SubjectPublicKeyInfo,
    )
    forged = [
        jwt.encode(claims, "", algorithm="none", headers=header),
        # HS256 "signed" with the public key, the classic confusion attack.
        _hs256_with(public_pem, claims, header),
    ]
    for token in forged:
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401


def _hs256_with(secret: bytes, claims: dict[str, Any], header: dict[str, str]) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = ".".join(
        [b64(json.dumps({**header, "alg": "HS256"}).encode()), b64(json.dumps(claims).encode())]
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
