"""Identity providers' signing keys: discovery document and JWKS, fetched with aiohttp and cached.

- Fetched on first use, then kept for the JWKS response's `Cache-Control: max-age`, bounded to
  [MIN_LIFETIME, MAX_LIFETIME] (a default when the provider says nothing).
- A token naming a `kid` that the cached set lacks triggers a refetch, at most one per provider per
  REFETCH_INTERVAL, so a flood of forged kids cannot make Rotor hammer the provider, and a key
  the provider has just published is accepted within a minute.
- Every fetch has a timeout, and the whole lookup (including waiting for another request's fetch
  of the same provider) is bounded by `wait`: a provider that is down answers ServiceUnavailable
  (503) after that, and only its own logins wait; after a failure the provider is not asked again
  for FAILURE_BACKOFF, and an expired cached set is still used when a refresh fails (up to
  MAX_STALE), so an outage of the provider does not end sign-ins with keys we already hold.
- Keys are parsed by PyJWT (`PyJWKSet`); keys it cannot use are skipped, not fatal.

Times come from the injected clock, so expiry and the refetch limit are tested without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKSetError

from service.domain.clock import Clock
from service.domain.errors import ServiceUnavailable

logger = logging.getLogger(__name__)

FETCH_TIMEOUT = 5.0  # seconds, each HTTP request
WAIT = 8.0  # seconds, a whole lookup at most (discovery + JWKS, or waiting for them)
MIN_LIFETIME = timedelta(minutes=1)
DEFAULT_LIFETIME = timedelta(hours=1)
MAX_LIFETIME = timedelta(hours=24)
MAX_STALE = timedelta(hours=24)
REFETCH_INTERVAL = timedelta(seconds=60)
FAILURE_BACKOFF = timedelta(seconds=5)
MAX_DOCUMENT_BYTES = 512 * 1024
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)\"?", re.IGNORECASE)


class ProviderUnreachable(Exception):
    """A fetch failed; the message says why, for the log (it never holds a token)."""


@dataclass(slots=True)
class _Cache:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    jwks_uri: str | None = None
    keys: dict[str, PyJWK] = field(default_factory=dict)
    fetched_at: datetime | None = None
    expires_at: datetime | None = None
    failed_at: datetime | None = None


def lifetime(cache_control: str | None) -> timedelta:
    """How long a JWKS response may be kept, from its Cache-Control header."""
    if cache_control is None:
        return DEFAULT_LIFETIME
    if "no-store" in cache_control.lower() or "no-cache" in cache_control.lower():
        return MIN_LIFETIME
    match = _MAX_AGE.search(cache_control)
    if match is None:
        return DEFAULT_LIFETIME
    seconds = timedelta(seconds=min(int(match.group(1)), 10**9))
    return max(MIN_LIFETIME, min(seconds, MAX_LIFETIME))


def _same_security(issuer: str, url: object) -> str:
    """The jwks_uri, if it is as safe as the issuer: https, or http only when the issuer is an
    http loopback URL (a development provider)."""
    if not isinstance(url, str):
        raise ProviderUnreachable("the discovery document has no jwks_uri")
    scheme = urlsplit(url).scheme
    if scheme == "https" or (scheme == "http" and urlsplit(issuer).scheme == "http"):
        return url
    raise ProviderUnreachable("the jwks_uri is not https")


class ProviderKeys:
    """The KeySource of service/domain/id_tokens.py over one aiohttp session for every provider."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        fetch_timeout: float = FETCH_TIMEOUT,
        wait: float = WAIT,
    ) -> None:
        self._session = session
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._wait = wait
        self._caches: dict[str, _Cache] = {}

    async def key(self, provider: str, issuer: str, kid: str | None) -> PyJWK | None:
        cache = self._caches.setdefault(provider, _Cache())
        try:
            async with asyncio.timeout(self._wait):
                return await self._key(cache, provider, issuer, kid)
        except TimeoutError:
            logger.warning("identity provider %s: no keys within %s s", provider, self._wait)
            cache.failed_at = self._clock()
            raise ServiceUnavailable(
                "The identity provider cannot be reached; try again shortly.", retry_after=5
            ) from None

    async def _key(
        self, cache: _Cache, provider: str, issuer: str, kid: str | None
    ) -> PyJWK | None:
        now = self._clock()
        if self._fresh(cache, now):
            found = self._find(cache, kid)
            if found is not None or not self._may_refetch(cache, now):
                return found
        async with cache.lock:
            # Another request may have fetched while this one waited for the lock.
            now = self._clock()
            if self._fresh(cache, now):
                found = self._find(cache, kid)
                if found is not None or not self._may_refetch(cache, now):
                    return found
            if cache.failed_at is not None and now - cache.failed_at < FAILURE_BACKOFF:
                return self._stale_or_unavailable(cache, provider, kid, now)
            try:
                await self._fetch(cache, issuer, now)
            except ProviderUnreachable as exc:
                logger.warning("identity provider %s: key fetch failed: %s", provider, exc)
                cache.failed_at = now
                return self._stale_or_unavailable(cache, provider, kid, now)
            cache.failed_at = None
            return self._find(cache, kid)

    @staticmethod
    def _fresh(cache: _Cache, now: datetime) -> bool:
        return cache.expires_at is not None and now < cache.expires_at

    @staticmethod
    def _may_refetch(cache: _Cache, now: datetime) -> bool:
        return cache.fetched_at is None or now - cache.fetched_at >= REFETCH_INTERVAL

    @staticmethod
    def _find(cache: _Cache, kid: str | None) -> PyJWK | None:
        if kid is None:
            # No kid: only unambiguous when the provider publishes a single key.
            return next(iter(cache.keys.values())) if len(cache.keys) == 1 else None
        return cache.keys.get(kid)

    def _stale_or_unavailable(
        self, cache: _Cache, provider: str, kid: str | None, now: datetime
    ) -> PyJWK | None:
        if cache.fetched_at is not None and now - cache.fetched_at < MAX_STALE:
            return self._find(cache, kid)
        raise ServiceUnavailable(
            "The identity provider cannot be reached; try again shortly.", retry_after=5
        )

    async def _fetch(self, cache: _Cache, issuer: str, now: datetime) -> None:
        if cache.jwks_uri is None:
            discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            document, _ = await self._get_json(discovery_url)
            if document.get("issuer") != issuer:
                raise ProviderUnreachable("the discovery document names another issuer")
            cache.jwks_uri = _same_security(issuer, document.get("jwks_uri"))
        document, cache_control = await self._get_json(cache.jwks_uri)
        try:
            # Keys PyJWT cannot use (another kty, a private key's extra fields) are skipped.
            key_set = PyJWKSet.from_dict(document)
        except PyJWKSetError as exc:
            raise ProviderUnreachable(f"the JWKS has no usable key ({exc})") from None
        cache.keys = {
            key.key_id: key for key in key_set.keys if key.key_id and key.public_key_use != "enc"
        }
        cache.fetched_at = now
        cache.expires_at = now + lifetime(cache_control)

    async def _get_json(self, url: str) -> tuple[dict[str, Any], str | None]:
        try:
            async with self._session.get(
                url, timeout=self._timeout, allow_redirects=False
            ) as response:
                if response.status != 200:
                    raise ProviderUnreachable(f"{url} answered {response.status}")
                body = await response.content.read(MAX_DOCUMENT_BYTES + 1)
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnreachable(f"{url} answered more than {MAX_DOCUMENT_BYTES} B")
                cache_control = response.headers.get("Cache-Control")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ProviderUnreachable(f"{url}: {type(exc).__name__}") from None
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ProviderUnreachable(f"{url} did not answer JSON") from None
        if not isinstance(document, dict):
            raise ProviderUnreachable(f"{url} did not answer a JSON object")
        return document, cache_control
