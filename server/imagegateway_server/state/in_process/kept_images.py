"""Kept images in this process: the on-disk keeper, its file reads and writes moved off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from imagegateway_server.state.kept_images import LocalImageKeeper


class LocalKeptImages:
    """``KeptImages`` over a synchronous keeper (replicas each keep their own)."""

    def __init__(self, keeper: LocalImageKeeper) -> None:
        self.keeper = keeper

    async def keep(self, log_id: str, data: bytes, mime_type: str) -> bool:
        return await asyncio.to_thread(self.keeper.keep, log_id, data, mime_type)

    async def get(self, log_id: str) -> tuple[bytes, str] | None:
        return await asyncio.to_thread(self.keeper.get, log_id)

    async def kept_among(self, log_ids: Iterable[str]) -> set[str]:
        return {log_id for log_id in log_ids if self.keeper.has(log_id)}  # an in-memory index: no I/O
