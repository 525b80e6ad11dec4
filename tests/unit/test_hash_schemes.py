"""Stored hash schemes: vectors made by bcryptjs and Django verify, others fail closed."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from service.domain import hash_schemes, passwords
from service.domain.passwords import (
    PasswordHasher,
    hash_password_sync,
    is_current,
    verify_password_sync,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def vectors(name: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads((VECTORS / f"{name}.json").read_text())["vectors"]
    return loaded


ALL = vectors("bcryptjs") + vectors("django")


def vector_id(vector: dict[str, Any]) -> str:
    scheme, _ = hash_schemes.split(vector["hash"])
    assert scheme is not None
    return f"{vector.get('library', 'django')}-{scheme.name}-{vector['name']}"


@pytest.mark.parametrize("vector", ALL, ids=vector_id)
def test_imported_hash_verifies_its_password_only(vector: dict[str, Any]) -> None:
    assert hash_schemes.well_formed(vector["hash"])
    assert verify_password_sync(vector["password"], vector["hash"])
    assert not verify_password_sync("x" + vector["password"], vector["hash"])
    assert not verify_password_sync(vector["password"][:5], vector["hash"])
    assert not is_current(vector["hash"], 10)


def test_schemes_are_recognised_by_their_tag() -> None:
    names = {vector_id(v): hash_schemes.split(v["hash"])[0] for v in ALL}
    assert {scheme.name for scheme in names.values() if scheme is not None} == {
        "bcrypt",
        "bcrypt_sha256",
        "pbkdf2_sha256",
    }
    assert None not in names.values()
    own = hash_password_sync("pw", 4)
    scheme, rest = hash_schemes.split(own)
    assert scheme is not None
    assert scheme.name == "bcrypt-hmac-sha256"
    assert rest.startswith("$2b$04$")


def test_plain_bcrypt_ignores_what_follows_72_bytes_as_its_old_system_did() -> None:
    vector = next(v for v in vectors("bcryptjs") if v["name"] == "longer_than_72_bytes")
    other_suffix = vector["password"][:72] + "something else entirely"
    assert verify_password_sync(other_suffix, vector["hash"])


def test_rotor_hash_is_current_only_at_the_configured_cost() -> None:
    stored = hash_password_sync("pw", 5)
    assert is_current(stored, 5)
    assert not is_current(stored, 4)
    assert not is_current(stored, 6)
    assert passwords.rounds_of(stored) == 5
    assert passwords.rounds_of(vectors("bcryptjs")[0]["hash"]) is None


PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    "stored",
    [
        "md5$salt$5f4dcc3b5aa765d61d8327deb882cf99",  # a tag Rotor does not know
        PASSWORD,  # a plaintext "hash": no tag at all
        "",
        "bcrypt$$2b$10$" + "a" * 53,  # Django's plain bcrypt tag is not accepted
        "$2x$10$" + "a" * 53,  # crypt_blowfish's buggy variant
        "$2b$10$tooshort",
        "$2b$03$" + "a" * 53,  # cost below bcrypt's minimum
        "bcrypt-hmac-sha256$not-bcrypt",
        "bcrypt_sha256$$2b$10$" + "a" * 52 + "!",
        "pbkdf2_sha256$0$salt$" + "A" * 43 + "=",
        "pbkdf2_sha256$99999999$salt$" + "A" * 43 + "=",  # too many iterations to try
        "pbkdf2_sha256$1000$salt$not-base64",
        "pbkdf2_sha256$1000$$" + "A" * 43 + "=",
    ],
)
def test_unknown_or_malformed_hash_fails_closed_and_logs_no_secret(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not hash_schemes.well_formed(stored)
    with caplog.at_level(logging.ERROR, logger="rotor.passwords"):
        assert not verify_password_sync(PASSWORD, stored, owner="user 42")
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "user 42" in record.getMessage()
    assert PASSWORD not in caplog.text
    if stored:
        assert stored not in caplog.text


def test_password_bcrypt_refuses_is_a_wrong_password_not_an_error() -> None:
    assert not verify_password_sync("nul\x00byte", vectors("bcryptjs")[0]["hash"])


async def test_wrong_password_on_cheaper_hash_waits_as_long_as_a_current_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []

    async def record(seconds: float) -> None:
        pauses.append(seconds)

    cheap = next(v for v in vectors("django") if v["hash"].startswith("pbkdf2_sha256$1000$"))
    with ThreadPoolExecutor(max_workers=1) as executor:
        hasher = PasswordHasher(12, executor)
        await hasher.verify_nothing("warm up")  # measures a current (cost 12) verification
        monkeypatch.setattr(passwords.asyncio, "sleep", record)
        assert not await hasher.verify("wrong", cheap["hash"])
        assert await hasher.verify(cheap["password"], cheap["hash"])
    # One pause, for the failure only, of about a cost-12 bcrypt (far above 1,000 PBKDF2 rounds).
    assert len(pauses) == 1
    assert pauses[0] > 0.01


def test_only_weaker_hashes_are_rehashed() -> None:
    hasher = PasswordHasher(5, ThreadPoolExecutor(max_workers=1))
    assert hasher.needs_rehash(hash_password_sync("a password", 4))
    assert not hasher.needs_rehash(hash_password_sync("a password", 5))
    assert not hasher.needs_rehash(hash_password_sync("a password", 6))
