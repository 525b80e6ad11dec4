"""service/domain/id_tokens.py on its own: keys from PyJWK, time from the caller, no network."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from jwt import PyJWK
from oidc_fixture import CLIENT_ID, SigningKey, new_key

from service.domain import id_tokens
from service.domain.id_tokens import IdTokenRejected

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
ISSUER = "https://idp.example"


def _token(key: SigningKey, **claims: object) -> str:
    base = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "s",
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 300,
    }
    base.update(claims)
    return jwt.encode(base, key.private, algorithm=key.alg, headers={"kid": key.kid})


def _verify(token: str, jwk: PyJWK, *, nonce: str | None = None, now: datetime = NOW) -> object:
    return id_tokens.verify(
        token, jwk, issuer=ISSUER, client_ids=(CLIENT_ID,), nonce=nonce, now=now
    )


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_a_valid_token_gives_its_claims(alg: str) -> None:
    key = new_key(alg)
    token = _token(key, email=" ada@example.com ", email_verified="true")
    result = _verify(token, PyJWK.from_dict(key.public_jwk()))
    assert isinstance(result, id_tokens.VerifiedIdToken)
    assert result.subject == "s"
    assert result.email == "ada@example.com"
    assert result.email_verified is True
    assert result.expires_at == NOW + timedelta(seconds=300)
    assert result.digest == hashlib.sha256(token.encode()).digest()


def test_the_key_pins_the_algorithm() -> None:
    rsa, ec = new_key("RS256"), new_key("ES256")
    token = _token(rsa)
    with pytest.raises(IdTokenRejected) as error:
        _verify(token, PyJWK.from_dict(ec.public_jwk()))
    assert error.value.check == "algorithm"


@pytest.mark.parametrize(
    ("claims", "nonce", "now", "check"),
    [
        ({"iss": ISSUER + "/"}, None, NOW, "issuer"),
        ({"aud": ["x", "y"]}, None, NOW, "audience"),
        ({"aud": [CLIENT_ID, "y"], "azp": "y"}, None, NOW, "azp"),
        ({}, None, NOW + timedelta(seconds=331), "exp"),
        ({}, None, NOW - timedelta(seconds=31), "iat"),
        ({"nbf": int(NOW.timestamp()) + 60}, None, NOW, "nbf"),
        ({"nonce": "a"}, None, NOW, "nonce_missing"),
        ({"nonce": "a"}, "b", NOW, "nonce"),
        ({}, "b", NOW, "nonce"),
        ({"exp": True}, None, NOW, "exp"),
        ({"sub": 5}, None, NOW, "sub"),
    ],
)
def test_each_failure_names_its_check(
    claims: dict[str, object], nonce: str | None, now: datetime, check: str
) -> None:
    key = new_key("ES256")
    with pytest.raises(IdTokenRejected) as error:
        _verify(_token(key, **claims), PyJWK.from_dict(key.public_jwk()), nonce=nonce, now=now)
    assert error.value.check == check
    assert error.value.code == "invalid_credentials"


def test_header_checks_come_first() -> None:
    for token, check in [("a.b", "malformed"), ("e30.e30.", "algorithm"), ("x.y.z", "malformed")]:
        with pytest.raises(IdTokenRejected) as error:
            id_tokens.read_header(token)
        assert error.value.check == check
