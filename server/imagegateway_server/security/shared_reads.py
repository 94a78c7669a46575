"""One store read for every caller asking for the same record at the same moment.

The key services cache records for a few seconds. When an entry is missing or has just expired, a
burst of requests (thousands arriving at once) would each read the record, and the reads queue on
the store's one reader: with 10,000 requests in flight that queue took most of a minute. Callers
that ask while a read of the same key is in flight wait for it instead. The key should name the
cache generation too, so a caller asking after an invalidation never takes a read begun before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SharedReads(Generic[K, V]):
    """Reads in flight by key; ``read`` joins one or starts it."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    async def read(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """``load()``'s result, shared with every caller of the same ``key`` meanwhile. Its error reaches
        each of them; a caller cancelled while waiting does not cancel the read for the others."""
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(pending)

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled():
            done.exception()  # retrieved here, in case every caller went away before it ended
