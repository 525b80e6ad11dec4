"""The password hash schemes Rotor can verify: its own, and those of systems users come from.

A stored hash names its scheme with a tag before the first `$`, as Django does
(`pbkdf2_sha256$...`); plain bcrypt as written by bcrypt/bcryptjs is recognised by its own
modular-crypt prefix (`$2a$`, `$2b$`, `$2y$`). Only Rotor's own scheme is ever written; the others
are verified so that imported users can log in, and are then replaced (see service/flows/login.py).

Everything here is synchronous and CPU-bound: callers run it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt

ROTOR = "bcrypt-hmac-sha256"
BCRYPT = "bcrypt"
DJANGO_BCRYPT_SHA256 = "bcrypt_sha256"
DJANGO_PBKDF2_SHA256 = "pbkdf2_sha256"

BCRYPT_MAX_BYTES = 72
# Far above Django's default (1,000,000 in 5.2), low enough that one login cannot stall a core.
MAX_PBKDF2_ITERATIONS = 10_000_000
MAX_HASH_LENGTH = 512

_PREHASH_KEY = b"rotor-password-v1"
_BCRYPT_HASH = re.compile(r"\$2[aby]\$(?P<cost>0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}")
_PBKDF2_HASH = re.compile(
    r"(?P<iterations>[1-9][0-9]{0,7})\$(?P<salt>[!-#%-~]{1,128})\$(?P<digest>[A-Za-z0-9+/]{43}=)"
)


@dataclass(frozen=True, slots=True)
class Scheme:
    name: str
    # Both take the stored hash without its tag; `matches` is only called on a well-formed one.
    well_formed: Callable[[str], bool]
    matches: Callable[[bytes, str], bool]


def rotor_prehash(password: bytes) -> bytes:
    """base64(HMAC-SHA256): 44 ASCII bytes, so bcrypt's 72-byte limit never truncates.
    The fixed key only keeps leaked unsalted SHA-256 hashes from elsewhere from being shucked."""
    return base64.b64encode(hmac.digest(_PREHASH_KEY, password, hashlib.sha256))


def _bcrypt_well_formed(hashed: str) -> bool:
    return _BCRYPT_HASH.fullmatch(hashed) is not None


def _bcrypt_matches(secret: bytes, hashed: str) -> bool:
    return bcrypt.checkpw(secret, hashed.encode("ascii"))


def _pbkdf2_well_formed(hashed: str) -> bool:
    parsed = _PBKDF2_HASH.fullmatch(hashed)
    return parsed is not None and int(parsed["iterations"]) <= MAX_PBKDF2_ITERATIONS


def _pbkdf2_sha256_matches(password: bytes, hashed: str) -> bool:
    iterations, salt, digest = hashed.split("$")
    derived = hashlib.pbkdf2_hmac("sha256", password, salt.encode("ascii"), int(iterations))
    return hmac.compare_digest(base64.b64encode(derived), digest.encode("ascii"))


SCHEMES = {
    scheme.name: scheme
    for scheme in (
        Scheme(
            ROTOR,
            _bcrypt_well_formed,
            lambda password, hashed: _bcrypt_matches(rotor_prehash(password), hashed),
        ),
        # bcrypt and bcryptjs read only the first 72 bytes: the old system never saw the rest,
        # so neither do we (bcrypt>=5 refuses longer input instead of truncating it).
        Scheme(
            BCRYPT,
            _bcrypt_well_formed,
            lambda password, hashed: _bcrypt_matches(password[:BCRYPT_MAX_BYTES], hashed),
        ),
        # Django's BCryptSHA256PasswordHasher: bcrypt of the hex SHA-256 of the password.
        Scheme(
            DJANGO_BCRYPT_SHA256,
            _bcrypt_well_formed,
            lambda password, hashed: _bcrypt_matches(
                binascii.hexlify(hashlib.sha256(password).digest()), hashed
            ),
        ),
        Scheme(DJANGO_PBKDF2_SHA256, _pbkdf2_well_formed, _pbkdf2_sha256_matches),
    )
}


def split(stored: str) -> tuple[Scheme | None, str]:
    """The scheme a stored hash names (None if unknown) and the hash without its tag."""
    if stored.startswith("$2"):
        return SCHEMES[BCRYPT], stored
    tag, separator, hashed = stored.partition("$")
    scheme = SCHEMES.get(tag) if separator and tag != BCRYPT else None
    return scheme, hashed


def well_formed(stored: str) -> bool:
    scheme, hashed = split(stored)
    return scheme is not None and len(stored) <= MAX_HASH_LENGTH and scheme.well_formed(hashed)


def bcrypt_cost(stored: str) -> int | None:
    """The cost of any bcrypt-based stored hash, None for other schemes or malformed ones."""
    scheme, hashed = split(stored)
    parsed = _BCRYPT_HASH.fullmatch(hashed)
    if scheme is None or scheme.well_formed is not _bcrypt_well_formed or parsed is None:
        return None
    return int(parsed["cost"])
