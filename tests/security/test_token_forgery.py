"""Attacks on access tokens that held, replayed so that none comes back unnoticed: alg none in
its casings, HS256 keyed with each form of the public key (PEM, DER, JWK), kid path traversal
and SQL, jku/x5u never fetched, crit headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from helpers import Client, bearer, signed_in

from service.domain.keys import generate_private_key_pem, load_asymmetric_key_set


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _token(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return f"{signing_input}."
    return f"{signing_input}.{_b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


async def _refused(client: Client, token: str) -> bool:
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.fixture(params=["ES256", "EdDSA", "RS256"])
async def asymmetric(
    request: Any, make_client: Any, tmp_path: Path
) -> tuple[Client, Any, dict[str, Any]]:
    alg = request.param
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(generate_private_key_pem(alg))
    keys = load_asymmetric_key_set(alg, key_file)
    client = await make_client(keys=keys, jwt_alg=alg)
    tokens = await signed_in(client)
    return client, keys, tokens


def _claims(tokens: dict[str, Any]) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return claims


async def test_alg_none_in_every_casing_is_refused(asymmetric: Any) -> None:
    client, keys, tokens = asymmetric
    for alg in ("none", "None", "NONE", "nOnE"):
        header = {"alg": alg, "typ": "at+jwt", "kid": keys.signing.kid}
        assert await _refused(client, _token(header, _claims(tokens), None)), alg
        assert await _refused(client, _token(header, _claims(tokens), b"")), alg


async def test_hs256_keyed_with_any_form_of_the_public_key_is_refused(asymmetric: Any) -> None:
    client, keys, tokens = asymmetric
    public = keys.signing.public
    forms = {
        "PEM": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "DER": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "JWK": json.dumps(keys.signing.jwk).encode(),
        "JWK sorted": json.dumps(keys.signing.jwk, sort_keys=True, separators=(",", ":")).encode(),
    }
    for name, form in forms.items():
        for alg in ("HS256", "HS384", "HS512"):
            header = {"alg": alg, "typ": "at+jwt", "kid": keys.signing.kid}
            assert await _refused(client, _token(header, _claims(tokens), form)), (name, alg)
    assert (await client.get("/v1/me", headers=bearer(tokens))).ok  # the real one still works


async def test_kid_injection_is_refused(client: Client) -> None:
    tokens = await signed_in(client)
    for kid in (
        "../../../../dev/null",
        "/dev/null",
        "' OR '1'='1",
        "x'; DROP TABLE session; --",
        "",
        None,
        0,
    ):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": kid}
        assert await _refused(client, _token(header, _claims(tokens), b"")), kid
        assert await _refused(client, _token(header, _claims(tokens), b"\x00")), kid
    assert (await client.get("/v1/me", headers=bearer(tokens))).ok  # no table was dropped


async def test_jku_and_x5u_are_never_fetched(asymmetric: Any, aiohttp_server: Any) -> None:
    client, keys, tokens = asymmetric
    fetched: list[str] = []

    async def record(request: web.Request) -> web.Response:
        fetched.append(request.path)
        return web.json_response({"keys": []})

    bait = web.Application()
    bait.router.add_get("/{tail:.*}", record)
    server = await aiohttp_server(bait)
    for member in ("jku", "x5u"):
        header = {
            "alg": keys.signing.alg,
            "typ": "at+jwt",
            "kid": "attacker",
            member: str(server.make_url("/keys.json")),
        }
        assert await _refused(client, _token(header, _claims(tokens), b"x"))
    assert fetched == []


async def test_a_crit_header_is_refused_even_when_validly_signed(client: Client) -> None:
    tokens = await signed_in(client)
    header = jwt.get_unverified_header(tokens["access_token"])
    from tests_support import TEST_SECRET

    for crit in (["exp"], ["x-unknown"], "x", []):
        forged = jwt.encode(
            _claims(tokens),
            TEST_SECRET,
            algorithm="HS256",
            headers={**header, "crit": crit, "x-unknown": 1},
        )
        assert await _refused(client, forged), crit
