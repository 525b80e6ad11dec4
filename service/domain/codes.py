"""One-time codes (account recovery, email verification): 8 decimal digits from `secrets`.

A code is stored only as HMAC-SHA256 under a server key that never enters the database, bound to
its row id, so a database dump yields nothing to try (10^8 candidates are cheap to hash, but not
without the key). Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from enum import StrEnum

from cryptography.hazmat.primitives import serialization

from service.domain.keys import KeySet

CODE_DIGITS = 8
MAX_WRONG_TRIES = 5


class Purpose(StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose name, not a password)
    EMAIL_VERIFICATION = "email_verification"


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_key(keys: KeySet) -> bytes:
    """The codes' HMAC key, derived from the signing key (HMAC secret or private key), so every
    process of one deployment shares it with nothing more to configure. A new signing key makes
    the codes in flight invalid: users ask for another one."""
    private = keys.signing.private
    if isinstance(private, bytes):
        material = private
    else:
        material = private.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    return hmac.new(material, b"rotor-one-time-code-key-v1", hashlib.sha256).digest()


def digest(key: bytes, code_id: uuid.UUID, purpose: Purpose, code: str) -> bytes:
    message = b"|".join((code_id.bytes, purpose.value.encode(), code.encode("utf-8")))
    return hmac.new(key, message, hashlib.sha256).digest()


def matches(key: bytes, code_id: uuid.UUID, purpose: Purpose, code: str, stored: bytes) -> bool:
    return hmac.compare_digest(digest(key, code_id, purpose, code), stored)
