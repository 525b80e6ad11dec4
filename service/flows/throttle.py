"""Failure counters per account and per client IP, kept in PostgreSQL so that every server
process shares them.

An account's counter is keyed by HMAC-SHA256(server secret, canonical email), never by the
address: the table would otherwise list every address anyone tried, unknown ones (and typos,
and passwords typed into the email field) included. A client IP's counter is keyed by its
network: an IPv6 client by its /64 (one subscriber's prefix; its 2^64 addresses are free to
hop between), an IPv4-mapped IPv6 address by its IPv4 address.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import Settings
from service.db import throttle as counters
from service.domain.clock import Clock
from service.domain.emails import lenient_canonical
from service.domain.errors import RateLimited
from service.domain.views import ClientInfo

IP_LIMIT_FACTOR = 10
IPV6_PREFIX = 64
# The purpose the throttle's key is derived for (KeySet.derive_secret).
KEY_PURPOSE = "login-failure-keys"
ThrottleKey = tuple[str, str]


def ip_key(ip: str) -> str:
    """The counter an address counts on: IPv4 as is, IPv4-mapped IPv6 as its IPv4 address,
    other IPv6 as its /64 network; an unparsable value as given."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


class LoginThrottle:
    def __init__(
        self, settings: Settings, clock: Clock, secret: bytes, kind_prefix: str = ""
    ) -> None:
        """`kind_prefix` keeps another sign-in's counters apart from the users' (the support
        console's are "console_account" and "console_ip")."""
        self._settings = settings
        self._clock = clock
        self._secret = secret
        self._account = f"{kind_prefix}account"
        self._ip = f"{kind_prefix}ip"

    def account_key(self, email: str) -> ThrottleKey:
        digest = hmac.digest(self._secret, lenient_canonical(email).encode("utf-8"), "sha256")
        return (self._account, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))

    def keys(self, email: str, client: ClientInfo) -> list[ThrottleKey]:
        """The account's key first, then the client IP's (when known)."""
        keys = [self.account_key(email)]
        if client.ip is not None:
            keys.append((self._ip, ip_key(client.ip)))
        return keys

    def ip_keys(self, kind: str, client: ClientInfo) -> list[ThrottleKey]:
        """A per-IP counter of its own `kind` (e.g. register's), none when the IP is unknown."""
        return [] if client.ip is None else [(kind, ip_key(client.ip))]

    async def check(self, conn: AsyncConnection, keys: list[ThrottleKey]) -> None:
        """Raises RateLimited (with the seconds until the window lets attempts through) when
        any key is over its limit."""
        if not keys:
            return
        now = self._clock()
        window = timedelta(seconds=self._settings.login_window)
        limits = {self._account: self._settings.login_max_failures}
        # Every per-IP kind ("ip", "register_ip", "code_ip", ...) allows ten times an account's.
        ip_limit = limits[self._account] * IP_LIMIT_FACTOR
        retry_after = 0
        for row in await counters.failure_counts(conn, keys):
            window_end = row.window_start + window
            if row.failures >= limits.get(row.kind, ip_limit) and window_end > now:
                retry_after = max(retry_after, math.ceil((window_end - now).total_seconds()))
        if retry_after:
            raise RateLimited(retry_after)

    async def record_failure(
        self, conn: AsyncConnection, keys: list[ThrottleKey], now: datetime
    ) -> None:
        for kind, key in keys:
            await counters.record_failure(conn, kind, key, now, self._settings.login_window)

    async def clear_account(self, conn: AsyncConnection, keys: list[ThrottleKey]) -> None:
        """A successful login forgives the account's failures (not the IP's)."""
        await counters.clear_failures(conn, *keys[0])
