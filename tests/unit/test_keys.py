"""Key loading: algorithms must match keys, and errors name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from service.config import ConfigError, Settings
from service.domain.keys import (
    development_secret,
    generate_private_key_pem,
    hmac_key_set,
    load_asymmetric_key_set,
    load_key_set,
)


def test_private_key_must_match_the_algorithm(tmp_path: Path) -> None:
    key = tmp_path / "ed.pem"
    key.write_bytes(generate_private_key_pem("EdDSA"))
    with pytest.raises(ConfigError, match="^AUTH_JWT_PRIVATE_KEY_FILE: the key is for EdDSA"):
        load_asymmetric_key_set("ES256", key)


def test_garbage_and_public_keys_are_refused(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ConfigError, match="^AUTH_JWT_PRIVATE_KEY_FILE: .* not an unencrypted PEM"):
        load_asymmetric_key_set("EdDSA", garbage)
    private = tmp_path / "ed.pem"
    private.write_bytes(generate_private_key_pem("EdDSA"))
    keys = load_asymmetric_key_set("EdDSA", private)
    public = tmp_path / "ed.pub"
    public.write_bytes(
        keys.signing.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(ConfigError, match="expected a private key"):
        load_asymmetric_key_set("EdDSA", public)


def test_kids_are_stable_thumbprints(tmp_path: Path) -> None:
    key = tmp_path / "es.pem"
    key.write_bytes(generate_private_key_pem("ES256"))
    first, second = load_asymmetric_key_set("ES256", key), load_asymmetric_key_set("ES256", key)
    assert first.signing.kid == second.signing.kid and len(first.signing.kid) == 43
    assert hmac_key_set(b"x" * 32).signing.kid == hmac_key_set(b"x" * 32).signing.kid
    assert hmac_key_set(b"x" * 32).signing.kid != hmac_key_set(b"y" * 32).signing.kid


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = development_secret(tmp_path)
    assert len(first) >= 32 and development_secret(tmp_path) == first
    assert (tmp_path / "jwt-secret").stat().st_mode & 0o777 == 0o600
    keys = load_key_set(Settings(data_dir=tmp_path))
    assert keys.signing.private == first
