"""The request log writer: batching, flush, close without loss, retries, and counted drops."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from google.protobuf import json_format

from imagegateway_server.api.log_mapping import log_from_record
from imagegateway_server.domain.calls import Caller, GenerationCall, RoutingSpec
from imagegateway_server.domain.error_kinds import ErrorKind
from imagegateway_server.domain.errors import ProviderError, RequestFailed
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.observability.log_records import HASH_IN_THREAD_BYTES, PendingLogRecord, pending_log_record
from imagegateway_server.observability.request_log import RequestLogWriter
from imagegateway_server.routing.plan import Leaf
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import LogRecord
from imagegateway_server.storage.sqlite import SqliteStore

T0 = datetime(2025, 6, 1, tzinfo=UTC)


class BatchRecordingStore:
    """A real store (each backend in turn), noting the size of every batch it is given."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.batches: list[int] = []

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        self.batches.append(len(records))
        await self.inner.append_logs(records)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
def store(any_store: Store) -> BatchRecordingStore:
    return BatchRecordingStore(any_store)


def record(index: int) -> LogRecord:
    return LogRecord(
        id=f"log-{index:05d}",
        trace_id=f"trace-{index}",
        create_time=T0 + timedelta(milliseconds=index),
        status_code=200,
        provider="openai",
        model="dall-e-3",
        caller_key_id="key-a",
        config_id="",
        fallback_used=False,
        payload='{"prompt": "a secret prompt"}',
    )


async def stored_ids(store: SqliteStore) -> set[str]:
    ids: set[str] = set()
    token = ""
    while True:
        page = await store.list_logs(page_size=1000, page_token=token)
        ids.update(item.id for item in page.items)
        token = page.next_page_token
        if not token:
            return ids


async def test_submit_1000_then_close_loses_nothing(store: BatchRecordingStore) -> None:
    writer = RequestLogWriter(store, batch_size=200)
    await writer.start()
    for index in range(1000):
        writer.submit(record(index))
    await writer.close()
    assert await stored_ids(store) == {record(index).id for index in range(1000)}
    assert max(store.batches) <= 200 and sum(store.batches) == 1000
    assert len(store.batches) < 20  # batched, not one transaction per record
    assert writer.pending == 0 and writer.dropped == 0


async def test_close_without_start_still_writes_everything(store: BatchRecordingStore) -> None:
    writer = RequestLogWriter(store)
    for index in range(10):
        writer.submit(record(index))
    await writer.close()
    assert len(await stored_ids(store)) == 10


async def test_flush_waits_for_what_was_submitted_without_waiting_the_interval(
    store: BatchRecordingStore,
) -> None:
    writer = RequestLogWriter(store, flush_interval=30)
    await writer.start()
    writer.submit(record(1))
    writer.submit(record(2))
    await asyncio.wait_for(writer.flush(), 5)
    assert await stored_ids(store) == {record(1).id, record(2).id}
    await writer.flush()  # nothing pending: returns at once
    await writer.close()


async def test_small_batches_are_written_after_the_flush_interval(store: BatchRecordingStore) -> None:
    writer = RequestLogWriter(store, flush_interval=0.05)
    await writer.start()
    for index in range(5):
        writer.submit(record(index))
    for _ in range(100):
        await asyncio.sleep(0.02)
        if writer.pending == 0:
            break
    assert len(await stored_ids(store)) == 5
    assert store.batches == [5]
    await writer.close()


async def test_write_errors_are_logged_and_retried_until_they_succeed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "locked.db", busy_timeout=0.02)
    await store.open()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock: append_logs fails
    writer = RequestLogWriter(store)
    await writer.start()
    try:
        with caplog.at_level(logging.WARNING, logger="imagegateway_server.observability.request_log"):
            writer.submit(record(1))
            flushed = asyncio.ensure_future(writer.flush())
            await asyncio.sleep(0.4)
            assert not flushed.done()
            blocker.execute("ROLLBACK")
            await asyncio.wait_for(flushed, 10)
        assert await stored_ids(store) == {record(1).id}
        failures = [r for r in caplog.records if "retrying" in r.getMessage()]
        assert failures and "locked" in failures[0].getMessage()
        assert not any("secret prompt" in r.getMessage() for r in caplog.records)
    finally:
        blocker.close()
        await writer.close()
        await store.close()


async def test_close_with_grace_gives_up_and_reports_what_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "locked.db", busy_timeout=0.02)
    await store.open()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    writer = RequestLogWriter(store)
    try:
        for index in range(3):
            writer.submit(record(index))
        with caplog.at_level(logging.ERROR, logger="imagegateway_server.observability.request_log"):
            await writer.close(grace=0.3)
        assert any("3 records unwritten" in r.getMessage() for r in caplog.records)
    finally:
        blocker.close()
        await store.close()


async def test_full_queue_drops_are_counted_and_logged(
    store: BatchRecordingStore, caplog: pytest.LogCaptureFixture
) -> None:
    writer = RequestLogWriter(store, max_queue=10)
    with caplog.at_level(logging.ERROR, logger="imagegateway_server.observability.request_log"):
        for index in range(15):
            writer.submit(record(index))
    assert writer.dropped == 5
    assert any("queue is full" in r.getMessage() for r in caplog.records)
    await writer.close()
    assert len(await stored_ids(store)) == 10
    writer.submit(record(99))  # after close: counted, not written
    assert writer.dropped == 6


def test_naive_create_time_is_refused_at_submit(tmp_path: Path) -> None:
    writer = RequestLogWriter(SqliteStore(tmp_path / "unused.db"))
    naive = LogRecord("x", "t", datetime(2025, 1, 1), 200, "openai", "m", "k", "", False, "{}")
    with pytest.raises(ValueError, match="timezone-aware"):
        writer.submit(naive)


def pending(*images: bytes, cache_status: str = "MISS") -> PendingLogRecord:
    """The not-yet-built record of a request served with ``images`` (PNG bytes)."""
    leaf = Leaf(
        path="config.targets[0]",
        provider="openai",
        virtual_key="vk",
        credential=None,
        custom_host=None,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    routed = RoutedResult(
        result=ImageResult(
            images=tuple(GeneratedImage(data, "image/png", 64, 64) for data in images), model="dall-e-2", created=1
        ),
        leaf=leaf,
        provider="openai",
        retry_count=0,
        fallback_used=False,
        attempts=(AttemptRecord("config.targets[0]", "openai", "dall-e-2", 200, 10),),
    )
    call = GenerationCall(
        request=ImageRequest(prompt="a kite"),
        routing=RoutingSpec(virtual_key="vk"),
        caller=Caller("key-a", "generate"),
        transport="grpc",
        metadata={"team": "kites"},
    )
    return pending_log_record(
        call,
        trace_id="trace-p",
        started=0.0,
        config_id="",
        config_version=0,
        routed=routed,
        cache_status=cache_status,
        cost_usd=0.02,
    )


async def test_pending_records_are_built_by_the_writer_with_every_image_hashed(
    store: BatchRecordingStore,
) -> None:
    small, large = b"small png", bytes(range(256)) * (HASH_IN_THREAD_BYTES // 128)  # the large one in a thread
    entries = [pending(small), pending(small, large)]
    writer = RequestLogWriter(store)
    for entry in entries:
        writer.submit(entry)
    await writer.close()
    for entry, images in zip(entries, ([small], [small, large]), strict=True):
        stored = await store.get_log(entry.id)
        assert stored == entry.build()  # the record as built on the response path before
        assert stored.virtual_key_id == "vk" and stored.cost_usd == pytest.approx(0.02)
        logged = log_from_record(stored)
        assert [i.sha256 for i in logged.images] == [hashlib.sha256(data).hexdigest() for data in images]
        assert [i.bytes for i in logged.images] == [len(data) for data in images]
        assert (logged.prompt, dict(logged.metadata)) == ("a kite", {"team": "kites"})


async def test_images_are_let_go_once_built_even_while_the_store_is_stuck(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "locked.db", busy_timeout=0.02)
    await store.open()
    blocker = sqlite3.connect(store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # every write fails and is retried
    image = bytes(HASH_IN_THREAD_BYTES * 2)
    unreferenced = sys.getrefcount(image)
    writer = RequestLogWriter(store)
    await writer.start()
    try:
        writer.submit(pending(image))
        for _ in range(500):
            if sys.getrefcount(image) == unreferenced:
                break
            await asyncio.sleep(0.01)
        assert sys.getrefcount(image) == unreferenced  # the queued record no longer holds the image
        assert writer.pending == 1
        blocker.execute("ROLLBACK")
        await asyncio.wait_for(writer.flush(), 10)
    finally:
        blocker.close()
        await writer.close()
        await store.close()


async def test_a_record_that_cannot_be_built_is_counted_and_the_others_are_written(
    store: BatchRecordingStore, caplog: pytest.LogCaptureFixture
) -> None:
    good, broken = pending(b"png"), pending(b"png", cache_status="NOT-A-STATUS")
    writer = RequestLogWriter(store)
    with caplog.at_level(logging.ERROR, logger="imagegateway_server.observability.request_log"):
        writer.submit(record(1))
        writer.submit(broken)
        writer.submit(good)
        await asyncio.wait_for(writer.flush(), 5)
    assert await stored_ids(store) == {record(1).id, good.id}
    assert writer.dropped == 1 and writer.pending == 0
    assert any(broken.id in r.getMessage() for r in caplog.records)
    await writer.close()


@pytest.mark.parametrize("micros", [0, 123000, 123456])
def test_payload_is_the_request_log_message_in_protobufs_own_json_form(micros: int) -> None:
    # The payload is written without generated code; protobuf must read it back and write the same JSON.
    served = dataclasses.replace(pending(b"png"), create_time=datetime(2026, 1, 2, 3, 4, 5, micros, tzinfo=UTC))
    failure = RequestFailed(
        ProviderError(ErrorKind.RATE_LIMITED, "slow down", provider="openai", status_code=429),
        attempts=(
            AttemptRecord(
                "config.targets[0]",
                "openai",
                "dall-e-3",
                429,
                1234,
                error_kind=ErrorKind.RATE_LIMITED,
                error="slow down",
                translations=("size=1x1->2x2",),
            ),
            AttemptRecord(
                "config.targets[1]",
                "stability-ai",
                "sd3",
                0,
                0,
                error_kind=ErrorKind.DEADLINE_EXCEEDED,
                circuit_open=True,
            ),
        ),
    )
    failed = dataclasses.replace(served, routed=None, failure=failure, cache_status="DISABLED", cost_usd=0.0)
    for entry in (served, failed):
        record = entry.build()
        expected = json_format.MessageToDict(log_from_record(record), preserving_proto_field_name=True)
        assert json.loads(record.payload) == expected
