"""The OAuth 2.0 section: the resource-server clients allowed to introspect, and the rule that
makes AUTH_ISSUER usable as an OAuth issuer identifier (RFC 8414 section 2).

Client secrets are kept only as SHA-256 digests from the moment they are read, so a check
compares two fixed-length digests in constant time and never the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

INTROSPECTION_CLIENTS = "AUTH_INTROSPECTION_CLIENTS"
ISSUER = "AUTH_ISSUER"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class IntrospectionClient:
    client_id: str
    secret_digest: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    # Empty: POST /oauth/introspect answers 404.
    introspection_clients: tuple[IntrospectionClient, ...] = ()

    def accepts(self, client_id: str, secrets: tuple[str, ...]) -> bool:
        """Whether `client_id` is configured and one of `secrets` is its secret.

        Every configured client is compared (digests, in constant time), whatever matched
        first, so the answer's timing says nothing about which ids exist.
        """
        presented_id = _digest(client_id)
        presented = [_digest(secret) for secret in secrets]
        accepted = False
        for client in self.introspection_clients:
            id_matches = hmac.compare_digest(presented_id, _digest(client.client_id))
            for digest in presented:
                secret_matches = hmac.compare_digest(digest, client.secret_digest)
                accepted |= id_matches and secret_matches
        return accepted


def _clients(raw: str) -> tuple[IntrospectionClient, ...]:
    # Imported here: service.config imports this module to build its Settings.
    from service.config import ConfigError

    clients: list[IntrospectionClient] = []
    seen: set[str] = set()
    for part in raw.split(","):
        if not part.strip():
            continue
        client_id, colon, secret = part.strip().partition(":")
        if not colon or not client_id or len(secret.encode("utf-8")) < 16 or client_id in seen:
            # The value is not echoed: it holds secrets.
            raise ConfigError(
                f"{INTROSPECTION_CLIENTS}: invalid value, expected comma-separated id:secret "
                "pairs with distinct ids and secrets of at least 16 bytes"
            )
        seen.add(client_id)
        clients.append(IntrospectionClient(client_id, _digest(secret)))
    return tuple(clients)


def load_oauth_settings(env: Mapping[str, str]) -> OAuthSettings:
    """The section from `env`; raises ConfigError naming the variable."""
    raw = env.get(INTROSPECTION_CLIENTS, "")
    return OAuthSettings(introspection_clients=_clients(raw) if raw.strip() else ())


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def issuer_url(issuer: str) -> str | None:
    """`issuer` when it can be an OAuth issuer identifier: an https URL, or http on a loopback
    host, with a host and no query or fragment; None otherwise."""
    try:
        parts = urlsplit(issuer)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    if not host or parts.query or parts.fragment or "?" in issuer or "#" in issuer:
        return None
    if parts.scheme == "https" or (parts.scheme == "http" and _loopback(host)):
        return issuer
    return None


def issuer_warning(issuer: str) -> str | None:
    """The start-up warning for an issuer that cannot be published as metadata, or None."""
    if issuer_url(issuer) is not None:
        return None
    return (
        f"{ISSUER}: {issuer!r} is not an https URL (nor http on a loopback host), so "
        "/.well-known/openid-configuration and /.well-known/oauth-authorization-server answer "
        "404; set it to the public URL of this server to publish them"
    )
