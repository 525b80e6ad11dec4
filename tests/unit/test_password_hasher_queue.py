"""PasswordHasher's bound: beyond max_pending hashes in progress it refuses at once with a 503
error that carries Retry-After, and frees its slots as hashes finish."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from service.domain.errors import ServiceUnavailable
from service.domain.passwords import BUSY_RETRY_AFTER, PasswordHasher, hash_password_sync

PASSWORD = "correct horse battery staple"


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


async def test_refuses_beyond_max_pending_then_accepts_again(
    executor: ThreadPoolExecutor,
) -> None:
    stored = hash_password_sync(PASSWORD, 4)
    hasher = PasswordHasher(4, executor, max_pending=2)
    # Hold the only thread, so both accepted checks stay pending until released.
    release = threading.Event()
    blocker = executor.submit(release.wait)
    first = asyncio.create_task(hasher.verify(PASSWORD, stored))
    second = asyncio.create_task(hasher.hash(PASSWORD))
    await asyncio.sleep(0)  # both tasks take their slot and wait on the executor
    with pytest.raises(ServiceUnavailable) as refused:
        await hasher.verify(PASSWORD, stored)
    assert refused.value.retry_after == BUSY_RETRY_AFTER
    with pytest.raises(ServiceUnavailable):
        await hasher.verify_nothing(PASSWORD)
    with pytest.raises(ServiceUnavailable):
        hasher.ensure_capacity()
    release.set()
    blocker.result()
    assert await first is True
    assert (await second).startswith("bcrypt-hmac-sha256$")
    # The slots are free again.
    hasher.ensure_capacity()
    assert await hasher.verify(PASSWORD, stored) is True


async def test_no_bound_by_default(executor: ThreadPoolExecutor) -> None:
    stored = hash_password_sync(PASSWORD, 4)
    hasher = PasswordHasher(4, executor)
    results = await asyncio.gather(*(hasher.verify(PASSWORD, stored) for _ in range(8)))
    assert results == [True] * 8
