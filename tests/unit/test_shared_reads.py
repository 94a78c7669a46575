"""A burst of requests on a missing or expired key-cache entry reads the store once (security/shared_reads.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from imagegateway_server.domain.errors import StoreUnavailable
from imagegateway_server.security.api_keys import ApiKeyService
from imagegateway_server.security.shared_reads import SharedReads
from imagegateway_server.storage.base import Store


class SlowReads:
    """A load that counts its calls and ends when told."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.error: Exception | None = None

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"value {self.calls}"


async def test_callers_asking_together_share_one_read_and_later_ones_read_again() -> None:
    reads: SharedReads[str, str] = SharedReads()
    load = SlowReads()
    waiting = [asyncio.ensure_future(reads.read("k", load)) for _ in range(50)]
    await asyncio.sleep(0)
    load.release.set()
    assert await asyncio.gather(*waiting) == ["value 1"] * 50
    assert load.calls == 1
    assert await reads.read("k", load) == "value 2"  # the read ended: a new one


async def test_an_error_reaches_every_caller_and_a_cancelled_caller_leaves_the_read_to_the_others() -> None:
    reads: SharedReads[str, str] = SharedReads()
    load = SlowReads()
    load.error = StoreUnavailable("database down")
    first = asyncio.ensure_future(reads.read("k", load))
    second = asyncio.ensure_future(reads.read("k", load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    load.release.set()
    with pytest.raises(StoreUnavailable):
        await second
    assert first.cancelled() and load.calls == 1


async def test_a_burst_of_authentications_on_a_cold_cache_reads_the_key_once(any_store: Store) -> None:
    service = ApiKeyService(any_store)
    record, plaintext = await service.create("ci", "generate")
    reads = 0
    read = any_store.get_api_key_by_hash

    async def counted(key_hash: str) -> Any:
        nonlocal reads
        reads += 1
        return await read(key_hash)

    any_store.get_api_key_by_hash = counted  # type: ignore[method-assign]
    cold = ApiKeyService(any_store)
    assert await asyncio.gather(*(cold.authenticate(plaintext) for _ in range(100))) == [record] * 100
    assert reads == 1
