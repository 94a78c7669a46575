"""The in-process cache store: an LRU bounded by bytes whose entries expire after their max_age."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.settings import Settings
from imagegateway_server.state.cache_store import ENTRY_OVERHEAD_BYTES, CachedAnswer
from imagegateway_server.state.in_process.cache_store import MemoryCacheStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answer(image_bytes: int, *, url: str | None = None) -> CachedAnswer:
    image = GeneratedImage(data=None if url else b"x" * image_bytes, mime_type="image/png", url=url)
    return CachedAnswer(
        ImageResult(images=(image,), model="m", created=1),
        provider="openai",
        served_target="config.targets[0]",
        identity="id",
    )


def sized(total: int) -> CachedAnswer:
    """An answer whose size() is exactly ``total`` bytes."""
    return answer(total - ENTRY_OVERHEAD_BYTES)


async def test_an_answer_is_served_until_its_max_age_then_forgotten() -> None:
    clock = Clock()
    store = MemoryCacheStore(10_000, clock=clock)
    kept = sized(1000)
    await store.put("k", kept, 60)
    clock.now += 59.9
    assert await store.get("k") is kept
    clock.now += 0.2
    assert await store.get("k") is None
    assert store.bytes_used == 0 and len(store) == 0


async def test_the_least_recently_used_answer_makes_room_first() -> None:
    store = MemoryCacheStore(3000, clock=Clock())
    for name in ("a", "b", "c"):
        await store.put(name, sized(1000), 60)
    assert await store.get("a") is not None  # "b" is now the least recently used
    await store.put("d", sized(1000), 60)
    assert [await store.get(k) is not None for k in ("a", "b", "c", "d")] == [True, False, True, True]
    assert store.bytes_used == 3000


async def test_one_large_answer_evicts_as_many_as_it_needs() -> None:
    store = MemoryCacheStore(3000, clock=Clock())
    for name in ("a", "b", "c"):
        await store.put(name, sized(1000), 60)
    await store.put("big", sized(2500), 60)
    assert [await store.get(k) is not None for k in ("a", "b", "c", "big")] == [False, False, False, True]


async def test_an_answer_larger_than_the_whole_budget_is_not_kept_and_evicts_nothing() -> None:
    store = MemoryCacheStore(3000, clock=Clock())
    await store.put("a", sized(1000), 60)
    await store.put("huge", sized(3001), 60)
    assert await store.get("huge") is None
    assert await store.get("a") is not None and store.bytes_used == 1000


async def test_replacing_a_key_counts_its_bytes_once() -> None:
    store = MemoryCacheStore(10_000, clock=Clock())
    await store.put("k", sized(1000), 60)
    await store.put("k", sized(2000), 60)
    assert store.bytes_used == 2000 and len(store) == 1


async def test_a_zero_budget_keeps_nothing() -> None:
    store = MemoryCacheStore(0, clock=Clock())
    await store.put("k", sized(600), 60)
    assert await store.get("k") is None and store.bytes_used == 0


async def test_delete_forgets_and_frees_the_bytes() -> None:
    store = MemoryCacheStore(10_000, clock=Clock())
    await store.put("k", sized(1000), 60)
    await store.delete("k")
    await store.delete("k")
    assert await store.get("k") is None and store.bytes_used == 0


def test_size_counts_image_bytes_urls_and_bookkeeping() -> None:
    assert answer(100).size() == 100 + ENTRY_OVERHEAD_BYTES
    assert answer(0, url="https://x/y.png").size() == len("https://x/y.png") + ENTRY_OVERHEAD_BYTES


def test_a_negative_budget_is_refused() -> None:
    with pytest.raises(ValueError):
        MemoryCacheStore(-1)


operations = st.lists(
    st.tuples(
        st.sampled_from(["put", "get", "delete", "tick"]),
        st.sampled_from("abcdef"),
        st.integers(ENTRY_OVERHEAD_BYTES, 4000),
        st.integers(1, 30),
    ),
    max_size=60,
)


@given(operations)
async def test_the_byte_budget_holds_whatever_happens(ops: list[tuple[str, str, int, int]]) -> None:
    clock = Clock()
    store = MemoryCacheStore(8000, clock=clock)
    for op, name, size, seconds in ops:
        if op == "put":
            await store.put(name, sized(size), seconds)
        elif op == "get":
            await store.get(name)
        elif op == "delete":
            await store.delete(name)
        else:
            clock.now += seconds
        assert 0 <= store.bytes_used <= store.max_bytes
        live = [await store.get(k) for k in "abcdef"]
        assert store.bytes_used >= sum(a.size() for a in live if a is not None)


def test_the_budget_setting_defaults_to_256_mib_and_refuses_negatives() -> None:
    assert Settings.load(environ={}).cache_max_bytes == 256 * 1024 * 1024
    assert Settings.load(environ={"IMAGEGW_CACHE_MAX_BYTES": "1024"}).cache_max_bytes == 1024
    assert Settings.load({"cache_max_bytes": 0}, environ={}).cache_max_bytes == 0
    with pytest.raises(ValueError, match="IMAGEGW_CACHE_MAX_BYTES"):
        Settings.load(environ={"IMAGEGW_CACHE_MAX_BYTES": "-1"})
