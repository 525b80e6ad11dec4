"""Password hashing: bcrypt run in a bounded thread pool, never on the event loop.

Rotor's scheme maps the password to base64(HMAC-SHA256(key="rotor-password-v1", password)) before
bcrypt (see hash_schemes.rotor_prehash), so two passwords that differ anywhere stay different.
Stored hashes carry their scheme as a prefix: `bcrypt-hmac-sha256$<bcrypt hash>`. Hashes imported
from other systems (hash_schemes.SCHEMES) are verified too, and replaced at the next login.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from service.domain import hash_schemes
from service.domain.errors import ServiceUnavailable
from service.domain.hash_schemes import ROTOR

# Seconds a client is asked to wait when every bcrypt slot is taken: about one hash at cost 12.
BUSY_RETRY_AFTER = 1

T = TypeVar("T")
# Told how long each bcrypt call took: ("hash" | "verify", seconds). Metrics use it.
DurationCallback = Callable[[str, float], None]

SCHEME = ROTOR
logger = logging.getLogger("rotor.passwords")


def normalized(password: str) -> str:
    """The form a password is hashed in: Unicode NFC, so the same password typed on keyboards
    that compose accents differently (precomposed or combining) is one password."""
    return unicodedata.normalize("NFC", password)


def hash_password_sync(password: str, rounds: int) -> str:
    prehashed = hash_schemes.rotor_prehash(normalized(password).encode("utf-8"))
    hashed = bcrypt.hashpw(prehashed, bcrypt.gensalt(rounds)).decode("ascii")
    return f"{SCHEME}${hashed}"


def verify_password_sync(password: str, stored: str, owner: str = "an account") -> bool:
    """Whether `password` matches `stored`, of any known scheme: its NFC form, or as typed for
    a hash made before passwords were normalised (see `matched_form`)."""
    return matched_form(password, stored, owner) is not None


def matched_form(password: str, stored: str, owner: str = "an account") -> str | None:
    """Which form of `password` matches `stored`: "nfc", "raw" (as typed, not NFC: a hash from
    before normalisation, to be replaced) or None. An unknown or malformed stored hash fails
    closed and is logged, naming only `owner` (never the hash or the password)."""
    if _matches(normalized(password), stored, owner):
        return "nfc"
    if normalized(password) != password and _matches(password, stored, owner):
        return "raw"
    return None


def _matches(password: str, stored: str, owner: str) -> bool:
    scheme, hashed = hash_schemes.split(stored)
    if scheme is None:
        logger.error("the password hash of %s has an unknown scheme: it cannot log in", owner)
        return False
    if not hash_schemes.well_formed(stored):
        logger.error(
            "the %s password hash of %s is malformed: it cannot log in", scheme.name, owner
        )
        return False
    try:
        return scheme.matches(password.encode("utf-8"), hashed)
    except ValueError:
        return False  # e.g. a NUL byte bcrypt refuses: a wrong password, never a 500


def rounds_of(stored: str) -> int | None:
    """The bcrypt cost of a stored hash of Rotor's scheme, None for anything else."""
    scheme, _ = hash_schemes.split(stored)
    return (
        hash_schemes.bcrypt_cost(stored) if scheme is not None and scheme.name == SCHEME else None
    )


def is_current(stored: str, rounds: int) -> bool:
    """Whether `stored` is Rotor's scheme at `rounds`; anything else is re-hashed at login."""
    return rounds_of(stored) == rounds


class PasswordHasher:
    """Async bcrypt on a dedicated thread pool (bcrypt releases the GIL while it works).

    At most `max_pending` hashes run or wait at once; beyond that a request is refused at once
    with ServiceUnavailable (503, Retry-After) instead of queueing: under a login flood the
    latency of the accepted logins stays bounded (about max_pending / threads hash times) and
    the refused ones cost no CPU, while the threads stay busy.
    """

    def __init__(
        self,
        rounds: int,
        executor: ThreadPoolExecutor,
        on_duration: DurationCallback | None = None,
        max_pending: int | None = None,
    ) -> None:
        self.rounds = rounds
        self._executor = executor
        self._max_pending = max_pending
        self._pending = 0
        self._dummy_hash: str | None = None
        self._on_duration = on_duration
        # How long verifying a current hash takes here (the latest measurement).
        self._current_seconds: float | None = None

    def ensure_capacity(self) -> None:
        """Raise ServiceUnavailable now if a hash would be refused: lets a use case refuse before
        doing any database work for a request that cannot be served."""
        if self._max_pending is not None and self._pending >= self._max_pending:
            raise ServiceUnavailable(
                "Too many password checks in progress; try again shortly.",
                retry_after=BUSY_RETRY_AFTER,
            )

    async def hash(self, password: str) -> str:
        hashed, _ = await self._timed("hash", lambda: hash_password_sync(password, self.rounds))
        return hashed

    def needs_rehash(self, stored: str) -> bool:
        """Another scheme, or Rotor's at a lower cost: re-hashed at the next login. A hash of a
        higher cost is kept (lowering AUTH_BCRYPT_ROUNDS must not weaken stored hashes)."""
        cost = rounds_of(stored)
        return cost is None or cost < self.rounds

    async def verify(self, password: str, stored: str, owner: str = "an account") -> bool:
        return await self.verify_form(password, stored, owner) is not None

    async def verify_form(
        self, password: str, stored: str, owner: str = "an account"
    ) -> str | None:
        """`matched_form` on the pool: "raw" means the hash predates NFC and is to be
        re-hashed now that the password is known."""
        form, seconds = await self._timed("verify", lambda: matched_form(password, stored, owner))
        verified = form is not None
        if is_current(stored, self.rounds):
            self._current_seconds = seconds
        elif not verified:
            await self._pad_failure(password, seconds)
        return form

    async def _pad_failure(self, password: str, elapsed: float) -> None:
        """A wrong password against a cheaper imported hash must not answer sooner than one for
        an unknown email (which costs a current verification), or timing would tell that the
        account exists. Sleeping, rather than hashing, costs no CPU."""
        if self._current_seconds is None:
            await self.verify_nothing(password)  # measures, and spends, a current verification
            return
        await asyncio.sleep(max(0.0, self._current_seconds - elapsed))

    async def _timed(self, operation: str, work: Callable[[], T]) -> tuple[T, float]:
        """Run `work` on the pool: its result and bcrypt's own duration (not the queue wait)."""

        def run() -> tuple[T, float]:
            started = time.perf_counter()
            result = work()
            return result, time.perf_counter() - started

        self.ensure_capacity()
        self._pending += 1
        try:
            loop = asyncio.get_running_loop()
            result, seconds = await loop.run_in_executor(self._executor, run)
        finally:
            self._pending -= 1
        if self._on_duration is not None:
            self._on_duration(operation, seconds)
        return result, seconds

    async def verify_nothing(self, password: str) -> None:
        """Spend the same bcrypt work as `verify` for an account that does not exist, so the
        response time does not tell whether an email is registered."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(16))
        await self.verify(password, self._dummy_hash)
