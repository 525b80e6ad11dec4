"""Point 8: nbf honoured with the leeway, one string per ES256 token (low S only), no aiohttp
version in Server, login_failure keyed by a keyed hash (never the address), the cursor schema as
strict as /v1/events, TRACE /metrics is 405 when metrics are off."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import asyncpg
import jwt
from helpers import Client, bearer, error_of, login, signed_in
from tests_support import forge_access_token

from service.domain.keys import generate_private_key_pem, hmac_key_set, load_asymmetric_key_set
from service.domain.tokens import MAX_CLOCK_LEEWAY
from service.web.openapi import load_document

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _claims(tokens: dict[str, Any], **extra: Any) -> dict[str, Any]:
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return {**claims, **extra}


async def test_a_future_nbf_is_refused_beyond_the_leeway(client: Client, clock: Any) -> None:
    tokens = await signed_in(client)
    now = int(clock().timestamp())
    early = forge_access_token(_claims(tokens, nbf=now + MAX_CLOCK_LEEWAY + 1))
    response = await client.get("/v1/me", headers={"Authorization": f"Bearer {early}"})
    assert response.status == 401
    assert await error_of(response) == "invalid_token"
    within = forge_access_token(_claims(tokens, nbf=now + MAX_CLOCK_LEEWAY))
    assert (await client.get("/v1/me", headers={"Authorization": f"Bearer {within}"})).ok
    for bad in ("soon", True, [1]):
        odd = forge_access_token(_claims(tokens, nbf=bad))
        assert (
            await client.get("/v1/me", headers={"Authorization": f"Bearer {odd}"})
        ).status == 401


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _s_of(token: str) -> tuple[str, int, int]:
    head, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    return head, int.from_bytes(raw[:32]), int.from_bytes(raw[32:])


async def test_an_es256_token_has_one_string(make_client: Any, tmp_path: Path, clock: Any) -> None:
    key_file = tmp_path / "es256.pem"
    key_file.write_bytes(generate_private_key_pem("ES256"))
    client = await make_client(keys=load_asymmetric_key_set("ES256", key_file), jwt_alg="ES256")
    await signed_in(client)
    for _ in range(8):  # OpenSSL picks s high or low at random: every token Rotor issues is low
        tokens = await login(client)
        head, r, s = _s_of(tokens["access_token"])
        assert s <= P256_ORDER // 2
        assert (await client.get("/v1/me", headers=bearer(tokens))).ok
        # (r, n - s) is as valid a signature of the same content: refused.
        twin = f"{head}.{_b64(r.to_bytes(32) + (P256_ORDER - s).to_bytes(32))}"
        response = await client.get("/v1/me", headers={"Authorization": f"Bearer {twin}"})
        assert response.status == 401


async def test_the_server_header_names_no_version(client: Client) -> None:
    for path in ("/healthz", "/v1/nowhere", "/v1/me"):
        response = await client.get(path)
        server = response.headers.get("Server", "")
        assert "aiohttp" not in server.lower() and "python" not in server.lower(), server
        assert not re.search(r"\d", server), server


async def test_failure_counters_never_hold_the_address(
    client: Client, db: asyncpg.Connection
) -> None:
    for email in ("Someone.Unknown@Example.com", "someone.unknown@example.com."):
        await client.post("/v1/login", json={"email": email, "password": "wrong password"})
    rows = await db.fetch("SELECT kind, key, failures FROM login_failure WHERE kind = 'account'")
    assert len(rows) == 1 and rows[0]["failures"] == 2  # one canonical address, one counter
    assert "example" not in rows[0]["key"].lower() and "@" not in rows[0]["key"]


def test_the_keyed_hash_depends_on_the_server_secret() -> None:
    one = hmac_key_set(b"a" * 32).derive_secret("login-failure-keys")
    other = hmac_key_set(b"b" * 32).derive_secret("login-failure-keys")
    assert one != other and len(one) == 32


async def test_cursor_schema_rejects_what_the_route_rejects(client: Client) -> None:
    tokens = await signed_in(client)
    await client.post("/v1/login", json={"email": "ada@example.com", "password": "wrong one"})
    document = load_document()["components"]["parameters"]["EventCursor"]["schema"]
    pattern = re.compile(document["pattern"])
    for cursor in ("0", "x", "WyI", "WyI" + "A" * 300):
        assert not pattern.search(cursor)  # the document refuses it, as the route does
        response = await client.get(f"/v1/events?cursor={cursor}", headers=bearer(tokens))
        assert response.status == 422
    first = await (await client.get("/v1/events?limit=1", headers=bearer(tokens))).json()
    assert pattern.search(first["next_cursor"])  # and accepts what the route issues
    following = await client.get(
        f"/v1/events?limit=1&cursor={first['next_cursor']}", headers=bearer(tokens)
    )
    assert following.status == 200


async def test_trace_on_metrics_is_405_when_metrics_are_off(client: Client) -> None:
    response = await client.request("TRACE", "/metrics")
    assert response.status == 405
    assert "GET" in response.headers["Allow"].split(",")
    assert (await client.get("/metrics")).status == 404
