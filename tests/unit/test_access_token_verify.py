"""AccessTokens.verify with one key (header checked after a single parse) and with several
(key chosen by the header's kid and alg): the same tokens pass and fail either way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from service.domain.errors import InvalidToken
from service.domain.keys import Key, KeySet, hmac_key_set, public_key
from service.domain.tokens import AccessTokens

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SECRET = b"a-test-secret-that-is-at-least-32-bytes"


def ed25519_key() -> Key:
    private = ed25519.Ed25519PrivateKey.generate()
    found = public_key("EdDSA", private.public_key())
    return Key(found.kid, "EdDSA", private, found.public, found.jwk)


def key_sets() -> dict[str, KeySet]:
    single = hmac_key_set(SECRET)
    signing, older = ed25519_key(), ed25519_key()
    return {
        "one key": single,
        "several keys": KeySet(signing=signing, verification=(signing, older)),
    }


@pytest.fixture(params=["one key", "several keys"])
def keys(request: pytest.FixtureRequest) -> KeySet:
    return key_sets()[request.param]


def claims(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "iss": "rotor",
        "aud": "rotor",
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=15)).timestamp()),
        "jti": "x",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def forge(key: Key, body: dict[str, object], **headers: object) -> str:
    header = {"typ": "at+jwt", "kid": key.kid, **headers}
    return jwt.encode(body, key.private, algorithm=key.alg, headers=header)


def test_issued_tokens_verify(keys: KeySet) -> None:
    tokens = AccessTokens(keys, "rotor", "rotor")
    user_id, session_id = uuid.uuid4(), uuid.uuid4()
    token = tokens.issue(user_id, session_id, NOW, NOW + timedelta(minutes=15))
    verified = tokens.verify(token, NOW)
    assert (verified.user_id, verified.session_id) == (user_id, session_id)


@pytest.mark.parametrize(
    "case",
    ["wrong typ", "no typ", "unknown kid", "wrong iss", "wrong aud", "no sid", "expired", "none"],
)
def test_rejected_tokens(keys: KeySet, case: str) -> None:
    tokens = AccessTokens(keys, "rotor", "rotor")
    key = keys.signing
    token = {
        "wrong typ": lambda: forge(key, claims(), typ="JWT"),
        "no typ": lambda: jwt.encode(claims(), key.private, key.alg, headers={"kid": key.kid}),
        "unknown kid": lambda: forge(key, claims(), kid="other"),
        "wrong iss": lambda: forge(key, claims(iss="someone")),
        "wrong aud": lambda: forge(key, claims(aud="someone")),
        "no sid": lambda: forge(key, claims(sid=None)),
        "expired": lambda: forge(key, claims(exp=int((NOW - timedelta(minutes=1)).timestamp()))),
        "none": lambda: jwt.encode(
            claims(), None, algorithm="none", headers={"typ": "at+jwt", "kid": key.kid}
        ),
    }[case]()
    with pytest.raises(InvalidToken):
        tokens.verify(token, NOW)


def test_hmac_token_is_rejected_where_an_asymmetric_key_is_configured() -> None:
    keys = key_sets()["several keys"]
    tokens = AccessTokens(keys, "rotor", "rotor")
    # HS256 signed with the public key's bytes, claiming the configured kid.
    token = jwt.encode(
        claims(), SECRET, algorithm="HS256", headers={"typ": "at+jwt", "kid": keys.signing.kid}
    )
    with pytest.raises(InvalidToken):
        tokens.verify(token, NOW)
    only = KeySet(signing=keys.signing, verification=(keys.signing,))
    with pytest.raises(InvalidToken):
        AccessTokens(only, "rotor", "rotor").verify(token, NOW)


def test_a_token_signed_by_an_older_key_verifies_by_its_kid() -> None:
    keys = key_sets()["several keys"]
    older = keys.verification[1]
    token = forge(older, claims())
    assert AccessTokens(keys, "rotor", "rotor").verify(token, NOW).token_id == "x"


class _BrokenKeySet(KeySet):
    """A key set whose lookup has a bug (not a bad token)."""

    def verification_key(self, kid: object, alg: object) -> Key | None:
        raise AttributeError("a bug in the key lookup")


def test_a_bug_during_verification_surfaces_instead_of_passing_for_a_bad_token() -> None:
    signing, older = ed25519_key(), ed25519_key()
    issuer = AccessTokens(KeySet(signing=signing, verification=(signing, older)), "rotor", "rotor")
    token = issuer.issue(uuid.uuid4(), uuid.uuid4(), NOW, NOW + timedelta(seconds=60))
    broken = AccessTokens(
        _BrokenKeySet(signing=signing, verification=(signing, older)), "rotor", "rotor"
    )
    with pytest.raises(AttributeError):
        broken.verify(token, NOW)


@pytest.mark.parametrize("claim", ["sub", "sid"])
@pytest.mark.parametrize("value", [12, "not-a-uuid", None], ids=["number", "text", "null"])
def test_non_uuid_subject_or_session_claims_are_invalid_tokens(claim: str, value: object) -> None:
    claims = {
        "iss": "rotor",
        "aud": "rotor",
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "iat": int(NOW.timestamp()),
        "exp": int(NOW.timestamp()) + 60,
        "jti": "j",
        claim: value,
    }
    keys = hmac_key_set(SECRET)
    forged = jwt.encode(
        claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt", "kid": keys.signing.kid}
    )
    with pytest.raises(InvalidToken):
        AccessTokens(keys, "rotor", "rotor").verify(forged, NOW)
