"""A Python resource server that accepts Rotor's access tokens (docs/resource-servers.md).

`verify` checks a token locally with the keys of Rotor's JWKS (no request per call);
`introspect` asks Rotor, so a token whose session has ended is refused at once.
Needs PyJWT[crypto], Authlib and requests.
"""

from __future__ import annotations

from typing import Any

import jwt
import requests
from authlib.integrations.requests_client import OAuth2Session


class RotorTokens:
    def __init__(self, issuer: str, audience: str, client_id: str, client_secret: str) -> None:
        discovery = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
        metadata = requests.get(discovery, timeout=10).json()
        self.issuer = metadata["issuer"]
        self.audience = audience
        self.algorithms = metadata["id_token_signing_alg_values_supported"]
        # PyJWKClient keeps the key set for `lifespan` seconds and fetches it again when a token
        # names a kid it does not hold: a key Rotor starts signing with is picked up at once.
        self.jwks = jwt.PyJWKClient(metadata["jwks_uri"], cache_jwk_set=True, lifespan=300)
        self.introspection_endpoint = metadata["introspection_endpoint"]
        # HTTP Basic, as Rotor's introspection endpoint asks (client_secret_basic).
        self.client = OAuth2Session(client_id, client_secret)

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token; raises jwt.PyJWTError otherwise. A revoked
        session's token still passes until it expires (AUTH_ACCESS_TTL)."""
        if jwt.get_unverified_header(token).get("typ") != "at+jwt":
            raise jwt.InvalidTokenError("not an access token")
        key = self.jwks.get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=self.algorithms,
            audience=self.audience,
            issuer=self.issuer,
            leeway=30,
            options={"require": ["exp", "iat", "sub", "sid", "jti"]},
        )
        return claims

    def introspect(self, token: str) -> dict[str, Any] | None:
        """Rotor's answer for a live access token, None for anything else (an ended session's
        token included)."""
        response = self.client.introspect_token(
            self.introspection_endpoint,
            token=token,
            token_type_hint="access_token",  # noqa: S106
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        if not answer["active"] or answer.get("token_type") != "access_token":
            return None
        return answer
