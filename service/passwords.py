"""Password hashing: bcrypt run in a bounded thread pool, never on the event loop.

bcrypt reads only the first 72 bytes of its input, so Rotor's scheme first maps the password to
base64(HMAC-SHA256(key="rotor-password-v1", password)): 44 ASCII bytes with no NUL, so two
passwords that differ anywhere stay different. The fixed HMAC key only separates this use from a
plain SHA-256 (which would let leaked unsalted SHA-256 hashes from elsewhere be "shucked").
Stored hashes carry their scheme as a prefix: `bcrypt-hmac-sha256$<bcrypt hash>`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from service.errors import ServiceUnavailable

T = TypeVar("T")
# Seconds a client is asked to wait when every bcrypt slot is taken: about one hash at cost 12.
BUSY_RETRY_AFTER = 1

SCHEME = "bcrypt-hmac-sha256"
_PREHASH_KEY = b"rotor-password-v1"


def _prehash(password: str) -> bytes:
    digest = hmac.digest(_PREHASH_KEY, password.encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest)


def hash_password_sync(password: str, rounds: int) -> str:
    hashed = bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds)).decode("ascii")
    return f"{SCHEME}${hashed}"


def verify_password_sync(password: str, stored: str) -> bool:
    scheme, _, hashed = stored.partition("$")
    if scheme != SCHEME:
        return False  # unknown schemes fail closed
    try:
        return bcrypt.checkpw(_prehash(password), hashed.encode("ascii"))
    except ValueError:
        return False  # a malformed stored hash must not become a 500


def rounds_of(stored: str) -> int | None:
    """The bcrypt cost of a stored hash of Rotor's scheme, None for anything else."""
    scheme, _, hashed = stored.partition("$")
    parts = hashed.split("$")
    if scheme != SCHEME or len(parts) < 4 or not parts[2].isdigit():
        return None
    return int(parts[2])


class PasswordHasher:
    """Async bcrypt on a dedicated thread pool (bcrypt releases the GIL while it works).

    At most `max_pending` hashes run or wait at once; beyond that a request is refused at once
    with ServiceUnavailable (503, Retry-After) instead of queueing: under a login flood the
    latency of the accepted logins stays bounded (about max_pending / threads hash times) and
    the refused ones cost no CPU, while the threads stay busy.
    """

    def __init__(
        self, rounds: int, executor: ThreadPoolExecutor, max_pending: int | None = None
    ) -> None:
        self.rounds = rounds
        self._executor = executor
        self._max_pending = max_pending
        self._pending = 0
        self._dummy_hash: str | None = None

    def ensure_capacity(self) -> None:
        """Raise ServiceUnavailable now if a hash would be refused: lets a use case refuse before
        doing any database work for a request that cannot be served."""
        if self._max_pending is not None and self._pending >= self._max_pending:
            raise ServiceUnavailable(
                "Too many password checks in progress; try again shortly.",
                retry_after=BUSY_RETRY_AFTER,
            )

    async def _run(self, work: Callable[..., T], *args: object) -> T:
        self.ensure_capacity()
        self._pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, *args)
        finally:
            self._pending -= 1

    async def hash(self, password: str) -> str:
        return await self._run(hash_password_sync, password, self.rounds)

    async def verify(self, password: str, stored: str) -> bool:
        return await self._run(verify_password_sync, password, stored)

    async def verify_nothing(self, password: str) -> None:
        """Spend the same bcrypt work as `verify` for an account that does not exist, so the
        response time does not tell whether an email is registered."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy_hash)
