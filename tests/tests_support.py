"""Token forgery for negative tests."""

from __future__ import annotations

from typing import Any

import jwt

from service.domain.keys import hmac_key_set

TEST_SECRET = b"test-secret-that-is-at-least-32-bytes-long"


def forge_access_token(
    claims: dict[str, Any], *, typ: str = "at+jwt", secret: bytes = TEST_SECRET
) -> str:
    """A token signed like the test app signs, with the claims and header type given."""
    kid = hmac_key_set(TEST_SECRET).signing.kid
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": typ, "kid": kid})
