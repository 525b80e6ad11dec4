"""Verifying an identity provider's ID token (OpenID Connect Core 1.0, section 3.1.3.7).

Pure: the key comes from the caller (service/ops/oidc_keys.py fetches the provider's JWKS) and
the time from the injected clock, so every rule is tested without a network or sleeping. Every
failure raises `IdTokenRejected`, which clients see as the same `401 invalid_credentials`; its
`check` names the rule that failed, for the log only (never the token itself).
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import jwt
from jwt import PyJWK

from service.domain.errors import InvalidCredentials

# Asymmetric only: never `none`, never an HMAC (whose "key" would be public JWKS material).
ALGORITHMS = ("RS256", "ES256")
LEEWAY = timedelta(seconds=30)
MAX_TOKEN_LENGTH = 16_384
MAX_SUBJECT_LENGTH = 255
MAX_EMAIL_LENGTH = 254


class IdTokenRejected(InvalidCredentials):
    """The ID token failed `check`; the client sees only invalid_credentials."""

    message = "The ID token is invalid."

    def __init__(self, check: str) -> None:
        super().__init__()
        self.check = check


class KeySource(Protocol):
    """Finds a provider's signing key by `kid` (service/ops/oidc_keys.py implements it)."""

    async def key(self, provider: str, issuer: str, kid: str | None) -> PyJWK | None:
        """The key, refetching the JWKS when allowed; None when the provider has no such key.
        Raises ServiceUnavailable when the provider cannot be reached in time."""
        ...


@dataclass(frozen=True, slots=True)
class Header:
    kid: str | None
    alg: str


@dataclass(frozen=True, slots=True)
class VerifiedIdToken:
    subject: str
    # The address only when it looks like one; `email_verified` says whether the provider vouches.
    email: str | None
    email_verified: bool
    expires_at: datetime
    # SHA-256 of the whole token: what the one-time-use table stores.
    digest: bytes


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def read_header(token: str) -> Header:
    """The unverified header, enough to pick the key; IdTokenRejected when it is not a JWS."""
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise IdTokenRejected("malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise IdTokenRejected("malformed") from None
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALGORITHMS:
        raise IdTokenRejected("algorithm")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenRejected("malformed")
    return Header(kid=kid, alg=alg)


def verify(
    token: str,
    key: PyJWK,
    *,
    issuer: str,
    client_ids: tuple[str, ...],
    nonce: str | None,
    now: datetime,
) -> VerifiedIdToken:
    """Check the signature with `key` and every claim rule; raises IdTokenRejected."""
    header = read_header(token)
    # The algorithm is pinned by the key: an RSA key verifies RS256 only, a P-256 key ES256 only.
    if key.algorithm_name not in ALGORITHMS or header.alg != key.algorithm_name:
        raise IdTokenRejected("algorithm")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[key.algorithm_name],
            # The claims are checked below, against the injected clock, each with its own name.
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise IdTokenRejected("signature") from None
    except jwt.PyJWTError:
        raise IdTokenRejected("malformed") from None
    _check_claims(claims, issuer=issuer, client_ids=client_ids, now=now)
    _check_nonce(claims.get("nonce"), nonce)
    email, verified = _email(claims)
    return VerifiedIdToken(
        subject=claims["sub"],
        email=email,
        email_verified=verified,
        expires_at=_time(claims["exp"]),
        digest=token_digest(token),
    )


def _time(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IdTokenRejected(name)
    if not 0 <= value < 32_503_680_000:  # before year 3000: fits a datetime
        raise IdTokenRejected(name)
    return float(value)


def _check_claims(
    claims: dict[str, Any], *, issuer: str, client_ids: tuple[str, ...], now: datetime
) -> None:
    if claims.get("iss") != issuer:
        raise IdTokenRejected("issuer")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or not all(isinstance(one, str) for one in audiences):
        raise IdTokenRejected("audience")
    if not any(one in client_ids for one in audiences):
        raise IdTokenRejected("audience")
    # With several audiences, the party the token was issued to must be one of ours.
    if len(audiences) > 1 and "azp" in claims and claims["azp"] not in client_ids:
        raise IdTokenRejected("azp")
    exp, iat, nbf = _numeric(claims, "exp"), _numeric(claims, "iat"), _numeric(claims, "nbf")
    if exp is None or _time(exp) + LEEWAY <= now:
        raise IdTokenRejected("exp")
    if iat is None or _time(iat) - LEEWAY > now:
        raise IdTokenRejected("iat")
    if nbf is not None and _time(nbf) - LEEWAY > now:
        raise IdTokenRejected("nbf")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LENGTH:
        raise IdTokenRejected("sub")


def _check_nonce(claim: object, nonce: str | None) -> None:
    """The token's nonce is the request's nonce itself or its lowercase hex SHA-256 (Apple
    puts the hash in the token and the app keeps the raw value)."""
    if nonce is None:
        if claim is not None:
            raise IdTokenRejected("nonce_missing")
        return
    if not isinstance(claim, str):
        raise IdTokenRejected("nonce")
    hashed = hashlib.sha256(nonce.encode("utf-8")).hexdigest()
    given = claim.encode("utf-8")
    # Both comparisons always run: constant time whichever form the app used.
    raw_match = hmac.compare_digest(given, nonce.encode("utf-8"))
    hashed_match = hmac.compare_digest(given, hashed.encode("ascii"))
    if not (raw_match | hashed_match):
        raise IdTokenRejected("nonce")


def _email(claims: dict[str, Any]) -> tuple[str | None, bool]:
    email = claims.get("email")
    if not isinstance(email, str):
        return None, False
    email = email.strip()
    if (
        not 3 <= len(email) <= MAX_EMAIL_LENGTH
        or "@" not in email
        or any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in email)
    ):
        return None, False
    verified = claims.get("email_verified")
    # Apple sends "true"/"false" as strings; anything else is not a promise.
    return email, verified is True or verified == "true"
