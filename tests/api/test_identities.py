"""GET/POST /v1/identities, DELETE /v1/identities/{provider}, and what account deletion and
password routes do with identities and password-less accounts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from conftest import FakeClock, MakeClient
from helpers import PASSWORD, bearer, signed_in
from oidc_fixture import CLIENT_ID, FakeProvider

from service.settings.oidc import OidcSettings, Provider


@pytest.fixture
async def providers(clock: FakeClock) -> AsyncIterator[tuple[FakeProvider, FakeProvider]]:
    apple, google = FakeProvider(clock), FakeProvider(clock)
    await apple.start()
    await google.start()
    yield apple, google
    await apple.close()
    await google.close()


@pytest.fixture
async def client(make_client: MakeClient, providers: tuple[FakeProvider, FakeProvider]) -> Any:
    apple, google = providers
    return await make_client(
        oidc=OidcSettings(
            providers=(
                Provider("apple", apple.issuer, (CLIENT_ID,)),
                Provider("google", google.issuer, (CLIENT_ID,)),
            )
        )
    )


async def idtoken_session(client: Any, provider: str, token: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/login/idtoken", json={"provider": provider, "id_token": token}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def link(client: Any, tokens: dict[str, Any], provider: str, token: str, **extra: Any) -> Any:
    return await client.post(
        "/v1/identities",
        json={"provider": provider, "id_token": token, **extra},
        headers=bearer(tokens),
    )


async def test_link_list_and_sign_in_with_the_linked_identity(
    client: Any, providers: tuple[FakeProvider, FakeProvider], db: asyncpg.Connection
) -> None:
    apple, _ = providers
    tokens = await signed_in(client)  # a password account whose email is not verified
    # Linking while signed in needs no verified email: the caller proves both sides.
    response = await link(client, tokens, "apple", apple.token(email="relay@apple.example"))
    assert response.status == 201, await response.text()
    identity = (await response.json())["identity"]
    assert identity["provider"] == "apple"
    assert identity["subject"] == "subject-1"
    assert identity["email"] == "relay@apple.example"
    listed = await (await client.get("/v1/identities", headers=bearer(tokens))).json()
    assert listed == {"identities": [identity]}
    signed = await idtoken_session(client, "apple", apple.token(jti="2", email=None))
    assert signed["user"]["id"] == tokens["user"]["id"]
    kinds = await db.fetch("SELECT reason FROM auth_event WHERE kind = 'identity_linked'")
    assert [r["reason"] for r in kinds] == ["apple"]


async def test_linking_another_users_identity_is_409(
    client: Any, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    apple, _ = providers
    await idtoken_session(client, "apple", apple.token(email="owner@example.com"))
    tokens = await signed_in(client, "other@example.com")
    response = await link(client, tokens, "apple", apple.token(jti="2"))
    assert response.status == 409
    assert (await response.json())["error"] == "identity_conflict"
    # A second identity of one provider for one user is a conflict too.
    response = await link(client, tokens, "apple", apple.token(sub="subject-2", jti="3"))
    assert response.status == 201
    response = await link(client, tokens, "apple", apple.token(sub="subject-3", jti="4"))
    assert response.status == 409


async def test_link_refuses_a_bad_token_and_needs_a_bearer(
    client: Any, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    apple, _ = providers
    tokens = await signed_in(client)
    response = await link(client, tokens, "apple", apple.token(aud="someone.else"))
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_credentials"
    response = await client.post(
        "/v1/identities", json={"provider": "apple", "id_token": apple.token()}
    )
    assert response.status == 401
    assert (await response.json())["error"] == "invalid_token"
    response = await link(client, tokens, "facebook", apple.token())
    assert response.status == 422


async def test_unlinking_the_last_login_method_is_409(
    client: Any, providers: tuple[FakeProvider, FakeProvider]
) -> None:
    apple, google = providers
    tokens = await idtoken_session(client, "apple", apple.token())
    response = await client.delete("/v1/identities/apple", headers=bearer(tokens))
    assert response.status == 409
    assert (await response.json())["error"] == "last_login_method"
    response = await client.delete("/v1/identities/google", headers=bearer(tokens))
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    assert (await link(client, tokens, "google", google.token())).status == 201
    assert (await client.delete("/v1/identities/apple", headers=bearer(tokens))).status == 204
    response = await client.delete("/v1/identities/google", headers=bearer(tokens))
    assert response.status == 409
    listed = await (await client.get("/v1/identities", headers=bearer(tokens))).json()
    assert [one["provider"] for one in listed["identities"]] == ["google"]


async def test_an_account_with_a_password_may_unlink_everything(
    client: Any, providers: tuple[FakeProvider, FakeProvider], db: asyncpg.Connection
) -> None:
    apple, _ = providers
    tokens = await signed_in(client)
    assert (await link(client, tokens, "apple", apple.token())).status == 201
    assert (await client.delete("/v1/identities/apple", headers=bearer(tokens))).status == 204
    assert await db.fetchval("SELECT count(*) FROM identity") == 0
    reasons = await db.fetch("SELECT reason FROM auth_event WHERE kind = 'identity_unlinked'")
    assert [r["reason"] for r in reasons] == ["apple"]


async def test_account_deletion_removes_identities(
    client: Any, providers: tuple[FakeProvider, FakeProvider], db: asyncpg.Connection
) -> None:
    apple, _ = providers
    tokens = await signed_in(client)
    assert (await link(client, tokens, "apple", apple.token())).status == 201
    response = await client.request(
        "DELETE", "/v1/me", json={"password": PASSWORD}, headers=bearer(tokens)
    )
    assert response.status == 204
    assert await db.fetchval("SELECT count(*) FROM identity") == 0
    # The identity is free again: it makes a new account.
    body = await idtoken_session(client, "apple", apple.token(jti="2"))
    assert body["user"]["id"] != tokens["user"]["id"]


async def test_a_passwordless_account_cannot_use_password_routes(
    client: Any, providers: tuple[FakeProvider, FakeProvider], db: asyncpg.Connection
) -> None:
    apple, _ = providers
    tokens = await idtoken_session(client, "apple", apple.token())
    response = await client.post(
        "/v1/password",
        json={"current_password": "anything at all", "new_password": "a new password"},
        headers=bearer(tokens),
    )
    assert response.status == 403
    assert (await response.json())["error"] == "invalid_credentials"
    response = await client.request(
        "DELETE", "/v1/me", json={"password": "anything at all"}, headers=bearer(tokens)
    )
    assert response.status == 403
    assert await db.fetchval('SELECT password_hash FROM "user"') is None
    assert await db.fetchval("SELECT count(*) FROM identity") == 1
