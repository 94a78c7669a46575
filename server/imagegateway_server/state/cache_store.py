"""The response cache's store: the answers it keeps and the async key-value interface every cache
backend implements (get, put with a time to live, delete)."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable
from typing import Protocol

from imagegateway_server.domain.result import ImageResult

# Bookkeeping per entry (dict slot, dataclasses, strings) counted against the byte budget, so that
# many tiny entries cannot exceed it unnoticed.
ENTRY_OVERHEAD_BYTES = 512


@dataclasses.dataclass(frozen=True, slots=True)
class CachedAnswer:
    """A final success as it is kept: the images and which target produced them."""

    result: ImageResult
    provider: str
    served_target: str
    # routing_identity() of the target that served, checked again before the answer is reused.
    identity: str

    def size(self) -> int:
        """Bytes this answer holds (image bytes, URLs, revised prompts) plus bookkeeping."""
        total = ENTRY_OVERHEAD_BYTES
        for image in self.result.images:
            total += len(image.data or b"") + len(image.url or "") + len(image.revised_prompt or "")
        return total


class CacheStore(Protocol):
    """A key-value store of answers with expiry. Async, so a network backend fits the same calls."""

    def get(self, key: str) -> Awaitable[CachedAnswer | None]:
        """The live answer under ``key``, or None when absent or expired. A network store may send the
        look-up when called rather than when awaited, so that it travels with commands issued beside it."""
        ...

    async def put(self, key: str, answer: CachedAnswer, ttl_seconds: float) -> None:
        """Stores (or replaces) ``answer`` for ``ttl_seconds``; may drop it if it cannot fit."""
        ...

    async def delete(self, key: str) -> None:
        """Forgets ``key``."""
        ...
