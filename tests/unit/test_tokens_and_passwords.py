"""Refresh-token format and derivation; access-token verification; password hashing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from service.domain.errors import InvalidToken
from service.domain.keys import hmac_key_set
from service.domain.passwords import hash_password_sync, rounds_of, verify_password_sync
from service.domain.tokens import AccessTokens, RefreshToken

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_refresh_token_round_trip_and_repr_hides_the_secret() -> None:
    token = RefreshToken.new()
    assert RefreshToken.parse(token.encode()) == token
    assert token.encode() not in repr(token) and token.secret.hex() not in repr(token)


UUID_A = uuid.UUID("5f1d3a40-7ea1-482a-a957-e399ca93f149")


@pytest.mark.parametrize(
    "raw",
    # Fixed ids (not uuid4()): every pytest-xdist worker must collect the same parameters.
    ["", ".", "x" * 76, f"{UUID_A.hex}.short", f"{UUID_A}.{'A' * 43}", "é" * 76],
)
def test_malformed_refresh_tokens_parse_to_none(raw: str) -> None:
    assert RefreshToken.parse(raw) is None


def test_child_is_deterministic_and_unlinkable_without_the_secret() -> None:
    parent = RefreshToken.new()
    child_id = uuid.uuid4()
    assert parent.child(child_id) == parent.child(child_id)
    assert parent.child(child_id).secret != parent.child(uuid.uuid4()).secret
    other = RefreshToken(parent.id, b"\x01" * 32)
    assert other.child(child_id).secret != parent.child(child_id).secret
    assert parent.matches(parent.verifier) and not other.matches(parent.verifier)


def test_access_token_expiry_uses_the_injected_clock_with_30s_leeway() -> None:
    tokens = AccessTokens(hmac_key_set(b"k" * 32), "rotor", "rotor")
    token = tokens.issue(uuid.uuid4(), uuid.uuid4(), NOW, NOW + timedelta(seconds=900))
    assert tokens.verify(token, NOW + timedelta(seconds=929)).expires_at > 0
    with pytest.raises(InvalidToken):
        tokens.verify(token, NOW + timedelta(seconds=930))
    with pytest.raises(InvalidToken):  # issued in the future beyond the leeway
        tokens.verify(token, NOW - timedelta(seconds=31))


def test_issuer_audience_and_key_are_pinned() -> None:
    issued = AccessTokens(hmac_key_set(b"k" * 32), "rotor", "rotor").issue(
        uuid.uuid4(), uuid.uuid4(), NOW, NOW + timedelta(seconds=60)
    )
    for verifier in [
        AccessTokens(hmac_key_set(b"k" * 32), "other", "rotor"),
        AccessTokens(hmac_key_set(b"k" * 32), "rotor", "other"),
        AccessTokens(hmac_key_set(b"j" * 32), "rotor", "rotor"),
    ]:
        with pytest.raises(InvalidToken):
            verifier.verify(issued, NOW)


def test_password_hash_round_trip_beyond_72_bytes() -> None:
    prefix = "é" * 40  # 80 UTF-8 bytes
    stored = hash_password_sync(prefix + "a", 4)
    assert verify_password_sync(prefix + "a", stored)
    assert not verify_password_sync(prefix + "b", stored)
    assert rounds_of(stored) == 4


@pytest.mark.parametrize("stored", ["", "md5$abc", "bcrypt-hmac-sha256$not-a-bcrypt-hash"])
def test_unknown_or_broken_hashes_fail_closed(stored: str) -> None:
    assert verify_password_sync("whatever1", stored) is False
