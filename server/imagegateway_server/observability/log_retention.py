"""Keeps the request log within its retention: a background task that prunes by age and by count.

Every ``interval`` seconds (and once right after start) it asks the store to delete records older
than ``max_age`` and all but the newest ``max_records``. Between runs the log may briefly exceed
the count, by at most what is written in one interval. A failed prune is logged and tried again at
the next run; it never affects requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from imagegateway_server.storage.base import Store

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 600.0


class LogRetention:
    """Prunes the request log periodically. ``start`` once, ``close`` once."""

    def __init__(
        self,
        store: Store,
        *,
        max_age: timedelta | None,
        max_records: int | None,
        interval: float = DEFAULT_INTERVAL,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if max_records is not None and max_records < 0:
            raise ValueError("max_records must not be negative")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._store = store
        self._max_age = max_age
        self._max_records = max_records
        self._interval = interval
        self._now = now
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._max_age is not None or self._max_records is not None

    async def prune_once(self) -> int:
        """One prune; returns how many records were deleted."""
        older_than = self._now() - self._max_age if self._max_age is not None else None
        deleted = await self._store.prune_logs(older_than=older_than, keep_max=self._max_records)
        if deleted:
            log.info("pruned %d request log records past retention", deleted)
        return deleted

    async def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="request-log-retention")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception as error:  # a broken prune must not end the loop, nor touch requests
                log.warning(
                    "pruning the request log failed, retrying in %.0f s: %s: %s",
                    self._interval,
                    type(error).__name__,
                    error,
                )
            await asyncio.sleep(self._interval)
