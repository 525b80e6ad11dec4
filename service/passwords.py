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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

T = TypeVar("T")
# Told how long each bcrypt call took: ("hash" | "verify", seconds). Metrics use it.
DurationCallback = Callable[[str, float], None]

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
    """Async bcrypt on a dedicated thread pool (bcrypt releases the GIL while it works)."""

    def __init__(
        self,
        rounds: int,
        executor: ThreadPoolExecutor,
        on_duration: DurationCallback | None = None,
    ) -> None:
        self.rounds = rounds
        self._executor = executor
        self._dummy_hash: str | None = None
        self._on_duration = on_duration

    async def hash(self, password: str) -> str:
        return await self._timed("hash", lambda: hash_password_sync(password, self.rounds))

    async def verify(self, password: str, stored: str) -> bool:
        return await self._timed("verify", lambda: verify_password_sync(password, stored))

    async def _timed(self, operation: str, work: Callable[[], T]) -> T:
        """Run `work` on the pool; the duration measured is bcrypt's, not the queue wait."""

        def run() -> tuple[T, float]:
            started = time.perf_counter()
            result = work()
            return result, time.perf_counter() - started

        loop = asyncio.get_running_loop()
        result, seconds = await loop.run_in_executor(self._executor, run)
        if self._on_duration is not None:
            self._on_duration(operation, seconds)
        return result

    async def verify_nothing(self, password: str) -> None:
        """Spend the same bcrypt work as `verify` for an account that does not exist, so the
        response time does not tell whether an email is registered."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy_hash)
