"""Whether the database answers right now, for health details (REST ``/health``, gRPC health metadata).

A store only learns that PostgreSQL is gone when a request touches it; an idle replica would go on
saying "up" for as long as nobody writes. ``DatabaseWatch`` therefore asks the database one cheap
question (its schema version) every ``interval`` seconds in the background, and also believes the
store the moment a request of its own found the database unreachable (``PostgresStore.reachable``).
Health answers read the last result and never wait on the database.

The replica keeps serving while the database is down (cached configs and keys, queued log records),
so this is a detail of a SERVING health, never a reason to stop serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from imagegateway_server.storage.base import Store
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.sqlite import SqliteStore

logger = logging.getLogger(__name__)

# Often enough for a health page, rare enough to cost nothing (one trivial query per replica).
DEFAULT_INTERVAL = 2.0
# A check that takes longer than this counts as "unreachable": health must not trail a hung server.
DEFAULT_TIMEOUT = 2.0


class DatabaseWatch:
    """The database's reachability as last seen; ``start`` then ``close``."""

    def __init__(self, store: Store, *, interval: float = DEFAULT_INTERVAL, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._store = store
        self._interval = interval
        self._timeout = timeout
        self._checked_up = True  # opening the store reached it
        self._last_error = ""
        self._up = True
        self._since = time.time()
        self._task: asyncio.Task[None] | None = None
        if isinstance(store, PostgresStore):
            self.backend, self.shown_name = "postgresql", store.name  # the name never holds the password
        elif isinstance(store, SqliteStore):
            self.backend, self.shown_name = "sqlite", str(store.path)
        else:
            self.backend, self.shown_name = type(store).__name__, ""

    @property
    def up(self) -> bool:
        """Reachable at the last check and not found unreachable by a request since."""
        up = self._checked_up and bool(getattr(self._store, "reachable", True))
        if up != self._up:
            self._up, self._since = up, time.time()
        return up

    def status(self) -> dict[str, object]:
        """For health details: never a password."""
        up = self.up
        return {
            "backend": self.backend,
            "database": self.shown_name,
            "up": up,
            "since": round(self._since, 3),
            **(
                {}
                if up
                else {
                    "serving_from": "cached configs and keys (database unreachable); admin writes are refused "
                    "and request logs wait in memory",
                    "last_error": self._last_error or "unreachable",
                }
            ),
        }

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="database-watch")

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check(self) -> bool:
        """Asks the database once; records and returns whether it answered in time."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._store.schema_version()
        except Exception as error:  # any failure to answer is "unreachable" for health's purpose
            if self._checked_up:
                logger.info("database health check failed: %s", type(error).__name__)
            self._checked_up = False
            # The type only: the stores' own messages already scrub passwords, but a type cannot leak one.
            self._last_error = type(error).__name__
        else:
            self._checked_up = True
            self._last_error = ""
        return self.up

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check()
