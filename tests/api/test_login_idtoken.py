"""POST /v1/login/idtoken against a test provider serving its own discovery document and JWKS."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from conftest import FakeClock, MakeClient
from helpers import bearer, register
from oidc_fixture import CLIENT_ID, FakeProvider, new_key, sha256_hex

from service.settings.oidc import OidcSettings, Provider

ROUTE = "/v1/login/idtoken"
WEB_CLIENT = "123-web.apps.googleusercontent.com"
ANDROID_CLIENT = "123-android.apps.googleusercontent.com"


@pytest.fixture
async def provider(clock: FakeClock) -> AsyncIterator[FakeProvider]:
    fake = FakeProvider(clock)
    await fake.start()
    yield fake
    await fake.close()


def oidc(*providers: FakeProvider | tuple[str, FakeProvider, tuple[str, ...]]) -> OidcSettings:
    configured = []
    for index, one in enumerate(providers):
        name, fake, ids = one if isinstance(one, tuple) else (f"test{index or ''}", one, None)
        configured.append(Provider(name, fake.issuer, ids or (CLIENT_ID, WEB_CLIENT)))
    # Short bounds keep the down-provider tests quick; 3 s leaves a loaded CI machine room to
    # answer the in-process fake provider (0.5 s once gave a 503 there).
    return OidcSettings(providers=tuple(configured), fetch_timeout=3.0, wait=3.0)


@pytest.fixture
async def client(make_client: MakeClient, provider: FakeProvider) -> Any:
    return await make_client(oidc=oidc(provider))


async def sign_in(client: Any, token: str, provider: str = "test", **extra: Any) -> Any:
    return await client.post(ROUTE, json={"provider": provider, "id_token": token, **extra})


async def expect_invalid(response: Any) -> None:
    assert response.status == 401
    assert await response.json() == {
        "error": "invalid_credentials",
        "message": "The ID token is invalid.",
    }


async def test_first_sign_in_creates_a_verified_passwordless_account(
    client: Any, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    response = await sign_in(client, provider.token(), device_name="iPhone", platform="ios")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["email_verified"] is True
    assert body["refresh_token"]
    me = await client.get("/v1/me", headers=bearer(body))
    assert (await me.json())["user"]["id"] == body["user"]["id"]
    assert await db.fetchval('SELECT password_hash FROM "user"') is None
    sessions = await (await client.get("/v1/sessions", headers=bearer(body))).json()
    assert [s["device_name"] for s in sessions["sessions"]] == ["iPhone"]
    # No password: a password login answers exactly as for a wrong password.
    login = await client.post("/v1/login", json={"email": "ada@example.com", "password": "x" * 9})
    assert login.status == 401
    assert (await login.json())["error"] == "invalid_credentials"
    # The audit event names the provider.
    reasons = await db.fetch("SELECT kind, reason FROM auth_event ORDER BY kind")
    assert [(r["kind"], r["reason"]) for r in reasons] == [
        ("identity_linked", "test"),
        ("login", "idtoken:test"),
        ("login_failed", "invalid_credentials"),
    ]


async def test_known_identity_signs_in_without_an_email(
    client: Any, provider: FakeProvider
) -> None:
    first = await (await sign_in(client, provider.token())).json()
    # Apple sends the email only the first time.
    second = await sign_in(client, provider.token(email=None, email_verified=None, jti="2"))
    assert second.status == 200
    body = await second.json()
    assert body["user"]["id"] == first["user"]["id"]
    assert body["session_id"] != first["session_id"]


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_both_algorithms_sign_in(client: Any, provider: FakeProvider, alg: str) -> None:
    key = next(key for key in provider.keys if key.alg == alg)
    assert (await sign_in(client, provider.token(key=key))).status == 200


async def test_a_replayed_token_is_refused(client: Any, provider: FakeProvider) -> None:
    token = provider.token()
    assert (await sign_in(client, token)).status == 200
    await expect_invalid(await sign_in(client, token))


async def test_concurrent_uses_of_one_token_sign_in_once(
    client: Any, provider: FakeProvider
) -> None:
    token = provider.token()
    responses = await asyncio.gather(*(sign_in(client, token) for _ in range(5)))
    assert sorted(r.status for r in responses) == [200, 401, 401, 401, 401]


def _now(provider: FakeProvider) -> int:
    return int(provider.clock().timestamp())


BAD_CLAIMS: dict[str, Any] = {
    "wrong_issuer": {"iss": "https://evil.example"},
    "issuer_with_slash": "slash",
    "wrong_audience": {"aud": "com.other.app"},
    "no_audience": {"aud": None},
    "several_audiences_foreign_azp": {"aud": [CLIENT_ID, "other"], "azp": "other"},
    "expired_past_leeway": "expired",
    "issued_in_the_future": "future",
    "no_exp": {"exp": None},
    "no_iat": {"iat": None},
    "exp_is_a_string": {"exp": "9999999999"},
    "no_subject": {"sub": None},
    "empty_subject": {"sub": ""},
    "nonce_in_token_only": {"nonce": "abc"},
}


@pytest.mark.parametrize("case", list(BAD_CLAIMS), ids=list(BAD_CLAIMS))
async def test_every_claim_failure_is_the_same_401(
    client: Any, provider: FakeProvider, case: str
) -> None:
    overrides = BAD_CLAIMS[case]
    now = _now(provider)
    if overrides == "slash":
        overrides = {"iss": provider.issuer + "/"}
    elif overrides == "expired":
        overrides = {"iat": now - 700, "exp": now - 31}
    elif overrides == "future":
        overrides = {"iat": now + 31}
    await expect_invalid(await sign_in(client, provider.token(**overrides)))


async def test_exp_and_iat_get_30_seconds_of_leeway(client: Any, provider: FakeProvider) -> None:
    now = _now(provider)
    assert (await sign_in(client, provider.token(iat=now - 600, exp=now - 29))).status == 200
    assert (await sign_in(client, provider.token(iat=now + 29, jti="b"))).status == 200


async def test_nonce_raw_or_hashed_and_required_when_sent(
    client: Any, provider: FakeProvider
) -> None:
    raw = "n-0S6_WzA2Mj"
    assert (await sign_in(client, provider.token(nonce=raw), nonce=raw)).status == 200
    hashed = provider.token(nonce=sha256_hex(raw), jti="2")
    assert (await sign_in(client, hashed, nonce=raw)).status == 200
    await expect_invalid(await sign_in(client, provider.token(nonce="other"), nonce=raw))
    await expect_invalid(await sign_in(client, provider.token(jti="3"), nonce=raw))
    upper = provider.token(nonce=sha256_hex(raw).upper(), jti="4")
    await expect_invalid(await sign_in(client, upper, nonce=raw))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_signatures_and_algorithms_are_refused(
    client: Any, provider: FakeProvider
) -> None:
    rsa, ec = provider.keys
    claims = provider.claims()
    # alg none, with and without the kid of a real key.
    none = f"{_b64({'alg': 'none', 'kid': rsa.kid})}.{_b64(claims)}."
    await expect_invalid(await sign_in(client, none))
    # HMAC keyed with the public JWK (the classic algorithm confusion).
    signing_input = f"{_b64({'alg': 'HS256', 'kid': rsa.kid})}.{_b64(claims)}"
    mac = hmac.new(json.dumps(rsa.public_jwk()).encode(), signing_input.encode(), "sha256")
    hmac_token = f"{signing_input}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"
    await expect_invalid(await sign_in(client, hmac_token))
    # Signed by a key the provider never published, under a published kid.
    stranger = new_key("RS256")
    stranger.kid = rsa.kid
    await expect_invalid(await sign_in(client, provider.token(key=stranger)))
    # An ES256 key's kid on an RS256 token: the algorithm is pinned by the key.
    await expect_invalid(await sign_in(client, provider.token(key=rsa, headers={"kid": ec.kid})))
    # A payload changed after signing.
    header, _, signature = provider.token().split(".")
    await expect_invalid(
        await sign_in(client, f"{header}.{_b64({**claims, 'sub': 'x'})}.{signature}")
    )
    for garbage in ["", "a.b.c", "x" * 60_000, "a." * 20_000, "not a token"]:
        await expect_invalid(await sign_in(client, garbage))


async def test_unknown_provider_is_422(client: Any, provider: FakeProvider) -> None:
    response = await sign_in(client, provider.token(), provider="facebook")
    assert response.status == 422
    assert "provider" in (await response.json())["fields"]


async def test_apple_shaped_token(
    make_client: MakeClient, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    client = await make_client(oidc=oidc(("apple", provider, ("com.example.app",))))
    raw_nonce = "6f2b1c0e-apple-raw-nonce"
    # Apple's documented claim set: strings for the booleans, the SHA-256 of the nonce.
    token = provider.token(
        aud="com.example.app",
        sub="001234.abcdef0123456789abcdef0123456789.1234",
        email="x7k2p9@privaterelay.appleid.com",
        email_verified="true",
        is_private_email="true",
        real_user_status=2,
        nonce=sha256_hex(raw_nonce),
        nonce_supported=True,
        auth_time=_now(provider),
        c_hash="aBcD",
    )
    response = await sign_in(client, token, provider="apple", nonce=raw_nonce)
    assert response.status == 200, await response.text()
    assert (await response.json())["user"]["email_verified"] is True
    # "false" as a string is not verified: nothing is created for a new identity.
    unverified = provider.token(sub="other", email="b@example.com", email_verified="false")
    response = await sign_in(client, unverified, provider="apple")
    assert response.status == 403
    assert (await response.json())["error"] == "email_not_verified"
    assert await db.fetchval('SELECT count(*) FROM "user"') == 1


async def test_google_shaped_token(make_client: MakeClient, provider: FakeProvider) -> None:
    client = await make_client(oidc=oidc(("google", provider, (WEB_CLIENT, ANDROID_CLIENT))))
    # An Android app's token: aud is the web client id, azp the Android client id; hd for
    # Workspace accounts.
    token = provider.token(
        aud=WEB_CLIENT,
        azp=ANDROID_CLIENT,
        sub="110169484474386276334",
        email="ada@example.org",
        email_verified=True,
        hd="example.org",
        name="Ada",
        picture="https://example.org/a.png",
    )
    assert (await sign_in(client, token, provider="google")).status == 200
    several = provider.token(aud=[WEB_CLIENT, "x"], azp=ANDROID_CLIENT, jti="2")
    assert (await sign_in(client, several, provider="google")).status == 200
    foreign = provider.token(aud=[WEB_CLIENT, "x"], azp="x", jti="3")
    await expect_invalid(await sign_in(client, foreign, provider="google"))


async def test_links_to_a_verified_account(
    client: Any, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    user = await register(client, "ada@example.com")
    await db.execute('UPDATE "user" SET email_verified_at = now()')
    response = await sign_in(client, provider.token(email="ADA@example.com"))
    assert response.status == 200
    assert (await response.json())["user"]["id"] == user["id"]
    assert await db.fetchval("SELECT user_id::text FROM identity") == user["id"]


async def test_an_unverified_account_is_never_taken_over(
    client: Any, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    await register(client, "ada@example.com")
    response = await sign_in(client, provider.token())
    assert response.status == 409
    assert (await response.json())["error"] == "identity_conflict"
    assert await db.fetchval("SELECT count(*) FROM identity") == 0
    assert await db.fetchval("SELECT count(*) FROM session") == 0


async def test_no_verified_email_creates_nothing(
    client: Any, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    for claims in ({"email_verified": False}, {"email": None}, {"email_verified": "yes"}):
        response = await sign_in(client, provider.token(**claims))
        assert response.status == 403
        assert (await response.json())["error"] == "email_not_verified"
    assert await db.fetchval('SELECT count(*) FROM "user"') == 0


async def test_disabled_account_is_403(
    client: Any, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    assert (await sign_in(client, provider.token())).status == 200
    await db.execute('UPDATE "user" SET disabled_at = now()')
    response = await sign_in(client, provider.token(jti="2"))
    assert response.status == 403
    assert (await response.json())["error"] == "account_disabled"


async def test_session_cap_applies(
    make_client: MakeClient, provider: FakeProvider, db: asyncpg.Connection
) -> None:
    client = await make_client(oidc=oidc(provider), max_sessions=2)
    for n in range(3):
        assert (await sign_in(client, provider.token(jti=str(n)))).status == 200
    assert await db.fetchval("SELECT count(*) FROM session WHERE revoked_at IS NULL") == 2


async def test_cookie_transport(client: Any, provider: FakeProvider) -> None:
    response = await sign_in(client, provider.token(), transport="cookie")
    assert response.status == 200
    assert "refresh_token" not in await response.json()
    assert "refresh_token" in response.cookies


async def test_a_new_key_is_fetched_at_most_once_a_minute(
    client: Any, provider: FakeProvider, clock: FakeClock
) -> None:
    assert (await sign_in(client, provider.token())).status == 200
    assert provider.jwks_fetches == 1
    rotated = new_key("ES256")
    provider.keys = [rotated]
    clock.advance(10)
    # Unknown kid within a minute of the last fetch: no refetch, refused.
    for n in range(3):
        await expect_invalid(await sign_in(client, provider.token(key=rotated, jti=str(n))))
    assert provider.jwks_fetches == 1
    clock.advance(50)
    response = await sign_in(client, provider.token(key=rotated, jti="later"))
    assert response.status == 200
    assert provider.jwks_fetches == 2
    # A forged kid now costs nothing either: the next refetch is a minute away again.
    stranger = new_key("RS256")
    await expect_invalid(await sign_in(client, provider.token(key=stranger)))
    assert provider.jwks_fetches == 2


async def test_cache_control_bounds_the_cache(
    client: Any, provider: FakeProvider, clock: FakeClock
) -> None:
    provider.cache_control = "public, max-age=120"
    assert (await sign_in(client, provider.token())).status == 200
    clock.advance(100)
    assert (await sign_in(client, provider.token(jti="2"))).status == 200
    assert provider.jwks_fetches == 1
    clock.advance(30)  # past max-age
    assert (await sign_in(client, provider.token(jti="3"))).status == 200
    assert provider.jwks_fetches == 2


async def test_a_provider_that_hangs_answers_503_and_stalls_no_one_else(
    make_client: MakeClient, provider: FakeProvider, clock: FakeClock
) -> None:
    other = FakeProvider(clock)
    await other.start()
    try:
        client = await make_client(oidc=oidc(provider, other))
        provider.hang = True
        hung = asyncio.ensure_future(sign_in(client, provider.token()))
        # The other provider signs in while the first one's fetch is still hanging.
        response = await sign_in(client, other.token(), provider="test1")
        assert response.status == 200
        assert not hung.done()
        response = await hung
        assert response.status == 503
        assert (await response.json())["error"] == "service_unavailable"
        # A provider that refuses connections is a 503 too.
        await provider.close()
        clock.advance(10)
        response = await sign_in(client, provider.token(jti="2"))
        assert response.status == 503
    finally:
        await other.close()


async def test_the_log_says_which_check_failed_never_the_token(
    client: Any, provider: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    token = provider.token(aud="com.other.app")
    with caplog.at_level("WARNING", logger="rotor.security"):
        await expect_invalid(await sign_in(client, token))
    rejected = [
        r for r in caplog.records if getattr(r, "fields", {}).get("event") == "id_token_rejected"
    ]
    assert [(r.fields["provider"], r.fields["check"]) for r in rejected] == [("test", "audience")]  # type: ignore[attr-defined]
    assert all(token not in r.getMessage() and token not in str(r.__dict__) for r in caplog.records)


async def test_spent_tokens_are_pruned_after_they_expire_and_stay_refused(
    client: Any, provider: FakeProvider, clock: FakeClock, db: asyncpg.Connection
) -> None:
    from service.flows.pruning import Pruner
    from service.web.appkeys import ENGINE, SETTINGS

    now = _now(provider)
    token = provider.token(exp=now + 120)
    later = provider.token(exp=now + 3600, jti="2")
    assert (await sign_in(client, token)).status == 200
    assert (await sign_in(client, later)).status == 200
    pruner = Pruner(client.app[ENGINE], client.app[SETTINGS], clock, batch_size=1)
    clock.advance(120 + 60)  # expired, but within the pruning margin: kept
    assert (await pruner.run()).id_tokens == 0
    clock.advance(300)
    assert (await pruner.run()).id_tokens == 1
    assert await db.fetchval("SELECT count(*) FROM id_token_use") == 1
    await expect_invalid(await sign_in(client, token))  # expired anyway
    await expect_invalid(await sign_in(client, later))  # still remembered


async def test_the_session_refreshes_and_revokes_like_any_other(
    client: Any, provider: FakeProvider
) -> None:
    first = await (await sign_in(client, provider.token())).json()
    second = await (await sign_in(client, provider.token(jti="2"))).json()
    refreshed = await client.post("/v1/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status == 200
    revoke = await client.delete(f"/v1/sessions/{first['session_id']}", headers=bearer(second))
    assert revoke.status == 204
    me = await client.get("/v1/me", headers=bearer(first))
    assert me.status == 401
