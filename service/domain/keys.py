"""Signing and verification keys for access tokens, and their public JWKS.

One key signs (HMAC secret or the configured private key); every key verifies, so an operator
rotates asymmetric keys by adding the old public key to AUTH_JWT_PUBLIC_KEY_FILES while a new
private key signs. An HMAC secret is never published.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from service.config import ConfigError, Settings

logger = logging.getLogger(__name__)

MIN_RSA_BITS = 2048
_THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}


@dataclass(frozen=True, slots=True)
class Key:
    kid: str
    alg: str
    private: Any  # what PyJWT signs with; None for a verification-only key
    public: Any  # what PyJWT verifies with
    jwk: dict[str, str] | None  # the public JWK, None for an HMAC secret


@dataclass(frozen=True, slots=True)
class KeySet:
    signing: Key
    verification: tuple[Key, ...]

    def verification_key(self, kid: object, alg: object) -> Key | None:
        """The key named by a token's header, only if the header's alg is that key's own."""
        for key in self.verification:
            if key.kid == kid and key.alg == alg:
                return key
        return None

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk for key in self.verification if key.jwk is not None]}

    def derive_secret(self, purpose: str) -> bytes:
        """A server secret for `purpose`, derived from the signing key (the one secret every
        process of a deployment already shares): HMAC-SHA256(key material, purpose). Nothing
        derived can be turned back into the key. Rotating the signing key changes it."""
        material = self.signing.private
        if not isinstance(material, bytes):
            material = material.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        return hmac.digest(material, b"rotor-derived:" + purpose.encode(), "sha256")


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def hmac_key_set(secret: bytes) -> KeySet:
    # The kid is a hash of the secret: stable across restarts and processes, and reveals nothing.
    kid = _b64url(hashlib.sha256(b"rotor-kid:" + secret).digest())[:16]
    key = Key(kid=kid, alg="HS256", private=secret, public=secret, jwk=None)
    return KeySet(signing=key, verification=(key,))


def algorithm_of(key: Any) -> str:
    """The JWS algorithm a public or private key is used with; ValueError if unsupported."""
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ES256"
        raise ValueError("an EC key must be on curve P-256 for ES256")
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"an RSA key must have at least {MIN_RSA_BITS} bits")
        return "RS256"
    raise ValueError("unsupported key type; expected Ed25519, EC P-256 or RSA")


def public_key(alg: str, public: Any) -> Key:
    jwk: dict[str, str] = json.loads(get_default_algorithms()[alg].to_jwk(public))
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    # RFC 7638 thumbprint: a kid that every process derives alike from the key itself.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = _b64url(hashlib.sha256(canonical).digest())
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return Key(kid=kid, alg=alg, private=None, public=public, jwk=jwk)


def _load_pem(path: Path, variable: str) -> Any:
    data = path.read_bytes()
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        pass
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise ConfigError(f"{variable}: {path} is not an unencrypted PEM key") from None


def load_asymmetric_key_set(
    alg: str, private_key_file: Path, public_key_files: tuple[Path, ...] = ()
) -> KeySet:
    """Keys for EdDSA/ES256/RS256; raises ConfigError naming the variable at fault."""
    private = _load_pem(private_key_file, "AUTH_JWT_PRIVATE_KEY_FILE")
    if not hasattr(private, "public_key") or isinstance(
        private, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
    ):
        raise ConfigError("AUTH_JWT_PRIVATE_KEY_FILE: expected a private key, found a public key")
    try:
        private_alg = algorithm_of(private)
    except ValueError as exc:
        raise ConfigError(f"AUTH_JWT_PRIVATE_KEY_FILE: {exc}") from None
    if private_alg != alg:
        raise ConfigError(
            f"AUTH_JWT_PRIVATE_KEY_FILE: the key is for {private_alg}, but AUTH_JWT_ALG is {alg}"
        )
    signing_public = public_key(alg, private.public_key())
    signing = Key(signing_public.kid, alg, private, signing_public.public, signing_public.jwk)
    verification = [signing]
    for path in public_key_files:
        loaded = _load_pem(path, "AUTH_JWT_PUBLIC_KEY_FILES")
        if hasattr(loaded, "private_bytes"):
            loaded = loaded.public_key()
        try:
            extra = public_key(algorithm_of(loaded), loaded)
        except ValueError as exc:
            raise ConfigError(f"AUTH_JWT_PUBLIC_KEY_FILES: {path}: {exc}") from None
        if all(key.kid != extra.kid for key in verification):
            verification.append(extra)
    return KeySet(signing=signing, verification=tuple(verification))


def generate_private_key_pem(alg: str) -> bytes:
    """A new unencrypted PKCS#8 PEM private key for `alg` (for `rotor keys generate`)."""
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if alg == "EdDSA":
        key = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    else:
        raise ValueError(f"no key to generate for {alg}")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def development_secret(data_dir: Path) -> bytes:
    """The HMAC secret kept in the data folder, generated on first use (development only), so
    a restart does not log anyone out and every local worker process signs alike."""
    path = data_dir / "jwt-secret"
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when two processes start at once, exactly one writes the secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes().strip()
        if len(secret) < 32:
            raise ConfigError(
                f"AUTH_JWT_SECRET: unset, and {path} holds no usable secret"
            ) from None
        return secret
    secret = secrets.token_urlsafe(48).encode("ascii")
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret


def load_key_set(settings: Settings) -> KeySet:
    """The keys that `settings` describe; raises ConfigError naming the variable at fault."""
    if settings.jwt_alg != "HS256":
        assert settings.jwt_private_key_file is not None  # enforced by load_settings
        return load_asymmetric_key_set(
            settings.jwt_alg, settings.jwt_private_key_file, settings.jwt_public_key_files
        )
    if settings.jwt_secret is not None:
        return hmac_key_set(settings.jwt_secret)
    logger.warning(
        "AUTH_JWT_SECRET is not set: using a generated secret kept in %s (development only)",
        settings.data_dir,
    )
    return hmac_key_set(development_secret(settings.data_dir))
