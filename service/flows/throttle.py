"""Failure counters per account and per client IP, kept in PostgreSQL so that every server
process shares them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from service.config import Settings
from service.db import throttle
from service.domain.clock import Clock
from service.domain.errors import RateLimited
from service.domain.views import ClientInfo

IP_LIMIT_FACTOR = 10
ThrottleKey = tuple[str, str]


class LoginThrottle:
    def __init__(self, settings: Settings, clock: Clock, kind_prefix: str = "") -> None:
        """`kind_prefix` keeps another sign-in's counters apart from the users' (the support
        console's are "console_account" and "console_ip")."""
        self._settings = settings
        self._clock = clock
        self._account = f"{kind_prefix}account"
        self._ip = f"{kind_prefix}ip"

    def keys(self, email: str, client: ClientInfo) -> list[ThrottleKey]:
        """The account's key first, then the client IP's (when known)."""
        keys = [(self._account, email.lower())]
        if client.ip is not None:
            keys.append((self._ip, client.ip))
        return keys

    async def check(self, conn: AsyncConnection, keys: list[ThrottleKey]) -> None:
        """Raises RateLimited (with the seconds until the window lets attempts through) when
        any key is over its limit."""
        now = self._clock()
        window = timedelta(seconds=self._settings.login_window)
        limits = {self._account: self._settings.login_max_failures}
        limits[self._ip] = limits[self._account] * IP_LIMIT_FACTOR
        retry_after = 0
        for row in await throttle.failure_counts(conn, keys):
            window_end = row.window_start + window
            if row.failures >= limits[row.kind] and window_end > now:
                retry_after = max(retry_after, math.ceil((window_end - now).total_seconds()))
        if retry_after:
            raise RateLimited(retry_after)

    async def record_failure(
        self, conn: AsyncConnection, keys: list[ThrottleKey], now: datetime
    ) -> None:
        for kind, key in keys:
            await throttle.record_failure(conn, kind, key, now, self._settings.login_window)

    async def clear_account(self, conn: AsyncConnection, keys: list[ThrottleKey]) -> None:
        """A successful login forgives the account's failures (not the IP's)."""
        await throttle.clear_failures(conn, *keys[0])
