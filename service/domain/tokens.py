"""Refresh-token format and access-token (JWT) encoding; no HTTP, no SQL.

A refresh token is `<id>.<secret>`: `id` is the primary key of its row and `secret` 32 random
bytes (base64url). The database keeps only SHA-256(secret), so a dump of it cannot refresh.
A child's secret is HMAC-SHA256(parent's secret, child's id): whoever presents the parent can
recompute the child, which lets any process answer a grace retry with the very same token,
without storing it and without a server-side key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt

from service.domain.errors import InvalidToken
from service.domain.keys import Key, KeySet

_REFRESH_TOKEN = re.compile(r"^([0-9a-f]{32})\.([A-Za-z0-9_-]{43})$")
_SECRET_BYTES = 32
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
MAX_CLOCK_LEEWAY = 30
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "iat", "exp", "jti"]


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: uuid.UUID
    secret: bytes

    @classmethod
    def new(cls) -> RefreshToken:
        return cls(uuid.uuid4(), secrets.token_bytes(_SECRET_BYTES))

    @classmethod
    def parse(cls, raw: str) -> RefreshToken | None:
        """The token in `raw`, or None when it is not of the format (never raises)."""
        match = _REFRESH_TOKEN.fullmatch(raw)  # not match(): "$" also matches before a "\n"
        if match is None:
            return None
        secret = _b64url_decode(match.group(2))
        if len(secret) != _SECRET_BYTES:
            return None
        return cls(uuid.UUID(hex=match.group(1)), secret)

    def encode(self) -> str:
        return f"{self.id.hex}.{_b64url(self.secret)}"

    @property
    def verifier(self) -> bytes:
        """What the database stores: useless for refreshing without the secret."""
        return hashlib.sha256(self.secret).digest()

    def matches(self, verifier: bytes) -> bool:
        return hmac.compare_digest(self.verifier, verifier)

    def child(self, child_id: uuid.UUID) -> RefreshToken:
        """The token that rotating this one issues under `child_id`; deterministic."""
        return RefreshToken(child_id, hmac.digest(self.secret, child_id.bytes, "sha256"))

    def __repr__(self) -> str:  # never print the secret
        return f"RefreshToken(id={self.id})"


# The order of P-256's group. An ECDSA signature (r, s) verifies as (r, n - s) too, so one token
# would have two valid strings; only the low half of s is accepted (the BIP-62/libsecp256k1 rule),
# and Rotor's own signatures are normalised to it.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_P256_HALF_ORDER = _P256_ORDER // 2
_P256_SIZE = 32


def _signature_parts(token: str) -> tuple[str, int, int] | None:
    signing_input, _, signature = token.rpartition(".")
    try:
        raw = _b64url_decode(signature)
    except ValueError:
        return None
    if len(raw) != 2 * _P256_SIZE:
        return None
    return signing_input, int.from_bytes(raw[:_P256_SIZE]), int.from_bytes(raw[_P256_SIZE:])


def _is_low_s(token: str) -> bool:
    parts = _signature_parts(token)
    return parts is not None and 0 < parts[2] <= _P256_HALF_ORDER


def low_s(token: str) -> str:
    """The same ES256 token with its signature's s in the low half (an equally valid
    signature of the same content)."""
    parts = _signature_parts(token)
    if parts is None or parts[2] <= _P256_HALF_ORDER:
        return token
    signing_input, r, s = parts
    raw = r.to_bytes(_P256_SIZE) + (_P256_ORDER - s).to_bytes(_P256_SIZE)
    return f"{signing_input}.{_b64url(raw)}"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int
    token_id: str
    issued_at: int


class AccessTokens:
    """Issues and verifies access tokens with a pinned set of keys and algorithms."""

    def __init__(self, keys: KeySet, issuer: str, audience: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience

    def derive_secret(self, purpose: str) -> bytes:
        """See KeySet.derive_secret."""
        return self._keys.derive_secret(purpose)

    def issue(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime, expires_at: datetime
    ) -> str:
        key = self._keys.signing
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "sid": str(session_id),
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": _b64url(secrets.token_bytes(16)),
        }
        headers = {"typ": ACCESS_TOKEN_TYPE, "kid": key.kid}
        token = jwt.encode(claims, key.private, algorithm=key.alg, headers=headers)
        return low_s(token) if key.alg == "ES256" else token

    def _decode(self, token: str, key: Key) -> dict[str, Any]:
        """Signature (with `key`, only its algorithm), issuer, audience and required claims."""
        decoded: dict[str, Any] = jwt.decode_complete(
            token,
            key.public,
            algorithms=[key.alg],
            audience=self._audience,
            issuer=self._issuer,
            # Expiry is checked by verify() against the injected clock, not time.time().
            options={
                "require": _REQUIRED_CLAIMS,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
            },
        )
        return decoded

    def verify(self, token: str, now: datetime) -> AccessClaims:
        """The claims of a valid token; raises InvalidToken for anything else."""
        # A compact JWS is base64url and dots: anything else (a header that was not UTF-8
        # arrives with surrogates) is refused here, before the library would fail to encode it.
        if not token.isascii():
            raise InvalidToken()
        try:
            keys = self._keys.verification
            if len(keys) == 1:
                # One key (the usual case): parse the token once, then check its header.
                key = keys[0]
                decoded = self._decode(token, key)
                header = decoded["header"]
                if header.get("kid") != key.kid or header.get("alg") != key.alg:
                    raise InvalidToken()
            else:
                header = jwt.get_unverified_header(token)
                found = self._keys.verification_key(header.get("kid"), header.get("alg"))
                if found is None:
                    raise InvalidToken()
                decoded = self._decode(token, found)
            if header.get("typ") != ACCESS_TOKEN_TYPE:
                raise InvalidToken()
            if header.get("alg") == "ES256" and not _is_low_s(token):
                raise InvalidToken()
            claims = decoded["payload"]
            expires_at = claims["exp"]
            issued_at = claims["iat"]
            if not isinstance(expires_at, int) or not isinstance(issued_at, int):
                raise InvalidToken()
            timestamp = now.timestamp()
            if (
                expires_at + MAX_CLOCK_LEEWAY <= timestamp
                or issued_at - MAX_CLOCK_LEEWAY > timestamp
            ):
                raise InvalidToken()
            # Not before: optional (Rotor issues none), but honoured when present.
            not_before = claims.get("nbf")
            if not_before is not None and (
                not isinstance(not_before, int | float)
                or isinstance(not_before, bool)
                or not_before - MAX_CLOCK_LEEWAY > timestamp
            ):
                raise InvalidToken()
            return AccessClaims(
                user_id=_uuid_claim(claims["sub"]),
                session_id=_uuid_claim(claims["sid"]),
                expires_at=expires_at,
                token_id=str(claims["jti"]),
                issued_at=issued_at,
            )
        except jwt.PyJWTError:
            # Only the library's verdicts mean "a bad token": anything else is a bug here, and
            # must surface as one instead of passing for a 401.
            raise InvalidToken() from None


def _uuid_claim(value: object) -> uuid.UUID:
    """A `sub`/`sid` claim: a UUID string, or InvalidToken."""
    if not isinstance(value, str):
        raise InvalidToken()
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidToken() from None
