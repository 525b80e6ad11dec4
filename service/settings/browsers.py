"""Browsers on other origins: the CORS allow-list and the refresh cookie's attributes.

Every value is checked at start-up; a bad one raises ConfigError naming the variable, so the
server never starts with a cookie a browser would drop or an allow-list it cannot honour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

SameSite = Literal["Strict", "Lax", "None"]
_SAMESITE: dict[str, SameSite] = {"strict": "Strict", "lax": "Lax", "none": "None"}


@dataclass(frozen=True, slots=True)
class BrowserSettings:
    # Exact origins ("https://app.example.com"), as browsers send them in Origin.
    cors_origins: frozenset[str] = frozenset()
    cookie_samesite: SameSite = "Strict"
    # None: a host-only cookie.
    cookie_domain: str | None = None
    cookie_path: str = "/v1"


def _origin(raw: str) -> str:
    """An origin exactly as a browser serialises it: scheme://host[:port], nothing after."""
    text = raw.strip()
    if text == "*" or text == "null":
        raise ValueError(f"exact origins, not {text!r}")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"origins of the form https://host[:port], got {text!r}")
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"an origin without a path, query or user, got {text!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"a valid port in {text!r}") from None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"  # IPv6 literal
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _origins(raw: str) -> frozenset[str]:
    return frozenset(_origin(part) for part in raw.split(",") if part.strip())


def _samesite(raw: str) -> SameSite:
    value = _SAMESITE.get(raw.strip().lower())
    if value is None:
        raise ValueError("Strict, Lax or None")
    return value


def _domain(raw: str) -> str:
    text = raw.strip().lstrip(".").lower()
    if not text or any(ch in text for ch in " ;,=/:") or not all(text.split(".")):
        raise ValueError("a host name such as example.com")
    return text


def _path(raw: str) -> str:
    text = raw.strip()
    if not text.startswith("/") or any(ch in text for ch in " ;,\t") or not text.isprintable():
        raise ValueError("a URL path starting with / (such as /auth/v1)")
    return text.rstrip("/") or "/"


def parse_browsers(env: Mapping[str, str], *, cookie_secure: bool) -> BrowserSettings:
    """The section from `env`; raises ConfigError naming the variable. `cookie_secure` is the
    already-parsed AUTH_COOKIE_SECURE (SameSite=None needs it)."""
    # Imported here: service.config imports this module for the BrowserSettings type.
    from service import config

    defaults = BrowserSettings()
    samesite = config._read(env, "AUTH_COOKIE_SAMESITE", _samesite) or defaults.cookie_samesite
    if samesite == "None" and not cookie_secure:
        # Browsers drop a SameSite=None cookie that is not Secure: it would never arrive.
        raise config.ConfigError(
            "AUTH_COOKIE_SAMESITE: None requires Secure, but AUTH_COOKIE_SECURE is false"
        )
    return BrowserSettings(
        cors_origins=config._read(env, "AUTH_CORS_ORIGINS", _origins) or defaults.cors_origins,
        cookie_samesite=samesite,
        cookie_domain=config._read(env, "AUTH_COOKIE_DOMAIN", _domain),
        cookie_path=config._read(env, "AUTH_COOKIE_PATH", _path) or defaults.cookie_path,
    )
