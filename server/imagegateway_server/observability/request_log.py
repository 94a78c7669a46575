"""Writes request log records off the hot path, in batches, without losing them.

``submit`` only appends to an in-memory queue and never waits. Two background tasks drain it:

* the builder turns each ``PendingLogRecord`` into its ``LogRecord`` (image SHA-256s, the payload
  JSON) as soon as it can, hashing large images in a worker thread. It runs apart from the writes so
  that a slow or failing store never holds image bytes: only built records wait on the store.
* the writer takes built records, in submission order, into ``Store.append_logs`` in batches of up to
  ``batch_size``, waiting at most ``flush_interval`` seconds to fill a batch. A failed write is logged
  and retried with capped exponential backoff until it succeeds (the store skips ids it already has,
  so a retry never duplicates).

Records are refused only when ``max_queue`` records are accepted and not yet written; each refusal
is counted and logged.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from imagegateway_server.observability.log_records import PendingLogRecord, build_log_records
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import LogRecord

logger = logging.getLogger(__name__)

_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
_DROP_LOG_INTERVAL = 10.0

# What ``submit`` takes: a record built already, or one the builder task builds.
LogEntry = LogRecord | PendingLogRecord


class RequestLogWriter:
    """Queues log records and writes them in the background. Use from one event loop."""

    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 200,
        flush_interval: float = 0.2,
        max_queue: int = 100_000,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or flush_interval < 0:
            raise ValueError("batch_size and max_queue must be positive and flush_interval not negative")
        self._store = store
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._unbuilt: collections.deque[LogEntry] = collections.deque()  # accepted, for the builder
        self._building = 0  # entries the builder has taken and not yet handed on
        # Built, for the writer; None stands for an entry that could not be built (a bug, logged).
        self._queue: collections.deque[LogRecord | None] = collections.deque()
        self._build_wakeup = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._builder: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._submitted = 0  # records accepted so far
        self._written = 0  # of those, records the store has taken (always a prefix, in order)
        self._flush_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._dropped = 0
        self._last_drop_log = float("-inf")

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full or the writer closed (or that could not be built)."""
        return self._dropped

    @property
    def pending(self) -> int:
        """Records accepted but not yet written."""
        return self._submitted - self._written

    def submit(self, record: LogEntry) -> None:
        """Queues ``record``; never waits. If the queue is full, the record is counted and dropped."""
        if record.create_time.tzinfo is None:
            # Refused here rather than failing a whole batch in the background.
            raise ValueError("LogRecord.create_time must be timezone-aware")
        if self._closing:
            self._drop("the writer is closed")
            return
        if self.pending >= self._max_queue:
            self._drop(f"the queue is full ({self._max_queue} records)")
            return
        self._unbuilt.append(record)
        self._submitted += 1
        if len(self._unbuilt) == 1:
            self._build_wakeup.set()

    def _drop(self, reason: str) -> None:
        self._dropped += 1
        now = asyncio.get_running_loop().time()
        if now - self._last_drop_log >= _DROP_LOG_INTERVAL:  # at most one line per interval
            self._last_drop_log = now
            logger.error("request log record dropped: %s; %d dropped so far", reason, self._dropped)

    async def start(self) -> None:
        """Starts the background builder and writer (flush and close start them too)."""
        if self._task is None:
            self._builder = asyncio.create_task(self._build_loop(), name="request-log-builder")
            self._task = asyncio.create_task(self._run(), name="request-log-writer")

    async def flush(self) -> None:
        """Returns once every record submitted before the call is written."""
        target = self._submitted
        if self._written >= target:
            return
        await self.start()
        waiter = asyncio.get_running_loop().create_future()
        self._flush_waiters.append((target, waiter))
        self._wakeup.set()
        await waiter

    async def close(self, grace: float | None = None) -> None:
        """Writes everything submitted, then stops; later submits are dropped (counted, logged).

        With ``grace`` seconds given, records still unwritten when they run out are given up and logged.
        """
        await self.start()
        assert self._task is not None and self._builder is not None
        self._closing = True
        self._build_wakeup.set()
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace)
        except TimeoutError:
            lost = self.pending
            for task in (self._builder, self._task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            logger.error("request log writer closed with %d records unwritten after %.1f s", lost, grace)
            for _, waiter in self._flush_waiters:
                if not waiter.done():
                    waiter.set_exception(RuntimeError("the request log writer closed before writing"))
            self._flush_waiters.clear()

    async def _build_loop(self) -> None:
        while True:
            if not self._unbuilt:
                if self._closing:
                    self._wakeup.set()  # the writer finishes once the builder has
                    return
                self._build_wakeup.clear()
                await self._build_wakeup.wait()
                continue
            await self._build_next()

    async def _build_next(self) -> None:
        # A method of its own so that its locals, which reference image bytes, end with it.
        taken = [self._unbuilt.popleft() for _ in range(min(self._batch_size, len(self._unbuilt)))]
        self._building = len(taken)
        records = await self._build(taken)
        self._building = 0
        was_empty = not self._queue
        self._queue.extend(records)
        if was_empty or len(self._queue) >= self._batch_size or self._flush_waiters:
            self._wakeup.set()

    @staticmethod
    async def _build(entries: list[LogEntry]) -> list[LogRecord | None]:
        try:
            return list(await build_log_records(entries))
        except Exception:
            logger.exception("building %d request log records failed; building them one by one", len(entries))
        built: list[LogRecord | None] = []
        for entry in entries:
            try:
                built.extend(await build_log_records([entry]))
            except Exception:
                logger.exception("request log record %s could not be built and is lost", entry.id)
                built.append(None)
        return built

    def _builder_done(self) -> bool:
        return not self._unbuilt and not self._building

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing and self._builder_done():
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Give a small batch until the interval ends to grow, unless someone is waiting.
            deadline = loop.time() + self._flush_interval
            while (
                len(self._queue) < self._batch_size
                and not self._closing
                and not self._flush_waiters
                and (remaining := deadline - loop.time()) > 0
            ):
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
            batch = [self._queue[index] for index in range(min(self._batch_size, len(self._queue)))]
            records = [record for record in batch if record is not None]
            if len(records) < len(batch):
                self._dropped += len(batch) - len(records)
            if records:
                await self._write(records)
            for _ in batch:
                self._queue.popleft()
            self._written += len(batch)
            self._release_flush_waiters()

    async def _write(self, batch: list[LogRecord]) -> None:
        failures = 0
        while True:
            try:
                await self._store.append_logs(batch)
            except Exception as error:
                failures += 1
                delay = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (failures - 1))
                # The type and message only: records may hold prompts and must not reach the log.
                logger.warning(
                    "writing %d request log records failed (attempt %d), retrying in %.2f s: %s: %s",
                    len(batch),
                    failures,
                    delay,
                    type(error).__name__,
                    error,
                )
                await asyncio.sleep(delay)
            else:
                if failures:
                    logger.info("wrote %d request log records after %d failed attempts", len(batch), failures)
                return

    def _release_flush_waiters(self) -> None:
        still_waiting = []
        for target, waiter in self._flush_waiters:
            if target <= self._written:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still_waiting.append((target, waiter))
        self._flush_waiters = still_waiting
