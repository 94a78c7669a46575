"""The response cache store kept in this process: an LRU bounded by bytes whose entries expire after
their ``max_age``."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable

from imagegateway_server.state.cache_store import CachedAnswer


@dataclasses.dataclass(slots=True)
class _Entry:
    answer: CachedAnswer
    expires: float
    size: int


class MemoryCacheStore:
    """An LRU over answers, bounded by ``max_bytes``. One process; one event loop (no locking)."""

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0

    @property
    def bytes_used(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> CachedAnswer | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry.answer

    async def put(self, key: str, answer: CachedAnswer, ttl_seconds: float) -> None:
        size = answer.size()
        self._drop(key)
        if size > self.max_bytes or ttl_seconds <= 0:
            return  # never flush the whole cache for one answer that could not fit anyway
        while self._bytes + size > self.max_bytes:
            self._drop(next(iter(self._entries)))  # the least recently used
        self._entries[key] = _Entry(answer, self._clock() + ttl_seconds, size)
        self._bytes += size

    async def delete(self, key: str) -> None:
        self._drop(key)

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry.size
