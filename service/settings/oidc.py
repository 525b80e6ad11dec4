"""Identity providers (sign in with an ID token): AUTH_OIDC_PROVIDERS and, for each NAME in it,
AUTH_OIDC_<NAME>_CLIENT_IDS and AUTH_OIDC_<NAME>_ISSUER.

`apple` and `google` have preset issuers; any other name must give its issuer. An issuer is an
`https` URL, except on a loopback address (a provider run for development or tests). Every bad
value raises ConfigError naming the variable, so the server never starts half-configured.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from service.config import ConfigError as ConfigErrorType


PRESET_ISSUERS = {
    "apple": "https://appleid.apple.com",
    "google": "https://accounts.google.com",
}
# A provider name is also part of variable names and of a route path: keep it simple.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_MAX_CLIENT_ID = 512


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    issuer: str
    client_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OidcSettings:
    providers: tuple[Provider, ...] = field(default=())
    # Not from the environment (tests shorten them): each key fetch's timeout, and the longest
    # a sign-in waits for a provider's keys before answering 503.
    fetch_timeout: float = 5.0
    wait: float = 8.0

    def get(self, name: str) -> Provider | None:
        for provider in self.providers:
            if provider.name == name:
                return provider
        return None


def _fail(message: str) -> ConfigErrorType:
    # Imported here: service.config imports this module for its Settings field.
    from service.config import ConfigError

    return ConfigError(message)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issuer(variable: str, raw: str) -> str:
    value = raw.strip()
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError:
        raise _fail(f"{variable}: invalid value, expected an https URL") from None
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise _fail(f"{variable}: invalid value, expected an https URL")
    if parts.scheme != "https" and not (parts.scheme == "http" and _is_loopback(host)):
        raise _fail(
            f"{variable}: invalid value, expected an https URL (http only on a loopback address)"
        )
    return value


def _client_ids(variable: str, raw: str | None) -> tuple[str, ...]:
    ids = tuple(part.strip() for part in (raw or "").split(",") if part.strip())
    if not ids:
        raise _fail(f"{variable}: missing, expected comma-separated client ids (aud values)")
    if any(len(one) > _MAX_CLIENT_ID for one in ids):
        raise _fail(f"{variable}: invalid value, expected client ids of at most 512 chars")
    return ids


def parse_oidc(env: Mapping[str, str]) -> OidcSettings:
    """The configured providers (none when AUTH_OIDC_PROVIDERS is unset or empty)."""
    names = [part.strip().lower() for part in env.get("AUTH_OIDC_PROVIDERS", "").split(",")]
    names = [name for name in names if name]
    providers: list[Provider] = []
    for name in names:
        if not _NAME.match(name):
            raise _fail(
                "AUTH_OIDC_PROVIDERS: invalid value, expected comma-separated names of lowercase"
                " letters, digits and underscores"
            )
        if any(provider.name == name for provider in providers):
            raise _fail(f"AUTH_OIDC_PROVIDERS: invalid value, {name} is listed twice")
        prefix = f"AUTH_OIDC_{name.upper()}_"
        raw_issuer = env.get(prefix + "ISSUER", "").strip() or PRESET_ISSUERS.get(name)
        if raw_issuer is None:
            raise _fail(f"{prefix}ISSUER: missing, expected the issuer URL of {name}")
        providers.append(
            Provider(
                name=name,
                issuer=_issuer(prefix + "ISSUER", raw_issuer),
                client_ids=_client_ids(prefix + "CLIENT_IDS", env.get(prefix + "CLIENT_IDS")),
            )
        )
    return OidcSettings(providers=tuple(providers))
