"""Request-log retention (prune by age and count, in the background) and the newer ListLogs filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imagegateway_server.observability.log_retention import LogRetention
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import LogFilter, LogRecord
from imagegateway_server.storage.sqlite import SqliteStore

T0 = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """For the tests of SQLite's own query plans and of a SqliteStore subclass."""
    opened = SqliteStore(tmp_path / "gateway.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py)."""
    return any_store


def record(
    index: int,
    *,
    when: datetime | None = None,
    model: str = "dall-e-3",
    config_id: str = "",
    fallback_used: bool = False,
) -> LogRecord:
    return LogRecord(
        id=f"log-{index:06d}",
        trace_id=f"trace-{index}",
        create_time=when or T0 + timedelta(seconds=index),
        status_code=200,
        provider="openai",
        model=model,
        caller_key_id="key-a",
        config_id=config_id,
        fallback_used=fallback_used,
        payload="{}",
    )


async def all_ids(store: Store) -> list[str]:
    ids: list[str] = []
    token = ""
    while True:
        page = await store.list_logs(page_size=200, page_token=token)
        ids.extend(r.id for r in page.items)
        if not page.next_page_token:
            return ids
        token = page.next_page_token


async def test_prune_by_age_deletes_only_records_older_than_the_cut(store: Store) -> None:
    await store.append_logs([record(i) for i in range(10)])
    deleted = await store.prune_logs(older_than=T0 + timedelta(seconds=4))
    assert deleted == 4
    assert sorted(await all_ids(store)) == [f"log-{i:06d}" for i in range(4, 10)]


async def test_prune_by_count_keeps_the_newest(store: Store) -> None:
    same_time = T0 + timedelta(seconds=100)
    # Three records share a create time: the order among them is by id, as in listings.
    await store.append_logs([record(i) for i in range(5)] + [record(i, when=same_time) for i in range(5, 8)])
    assert await store.prune_logs(keep_max=4) == 4
    assert await all_ids(store) == ["log-000007", "log-000006", "log-000005", "log-000004"]
    assert await store.prune_logs(keep_max=4) == 0
    assert await store.prune_logs(keep_max=0) == 4
    assert await all_ids(store) == []


async def test_prune_by_age_and_count_together(store: Store) -> None:
    await store.append_logs([record(i) for i in range(10)])
    assert await store.prune_logs(older_than=T0 + timedelta(seconds=2), keep_max=5) == 5
    assert await all_ids(store) == [f"log-{i:06d}" for i in range(9, 4, -1)]


async def test_a_large_prune_runs_in_chunks_and_deletes_everything_asked(store: Store) -> None:
    await store.append_logs([record(i, when=T0 + timedelta(microseconds=i)) for i in range(12_345)])
    assert await store.prune_logs(keep_max=345) == 12_000
    ids = await all_ids(store)
    assert len(ids) == 345 and ids[0] == "log-012344" and ids[-1] == "log-012000"


async def test_prune_refuses_a_naive_time_and_a_negative_count(store: Store) -> None:
    await store.append_logs([record(1)])
    with pytest.raises(ValueError):
        await store.prune_logs(older_than=datetime(2030, 1, 1))
    with pytest.raises(ValueError):
        await store.prune_logs(keep_max=-1)
    assert await all_ids(store) == ["log-000001"]


async def test_prune_with_no_limits_deletes_nothing(store: Store) -> None:
    await store.append_logs([record(i) for i in range(3)])
    assert await store.prune_logs() == 0


async def test_list_logs_filters_by_model_config_and_fallback(store: Store) -> None:
    await store.append_logs(
        [
            record(1, model="dall-e-3", config_id="cfg-a", fallback_used=True),
            record(2, model="core", config_id="cfg-a"),
            record(3, model="dall-e-3", config_id="cfg-b"),
            record(4, model="dall-e-3"),
        ]
    )

    async def ids(**fields: object) -> list[str]:
        return [r.id for r in (await store.list_logs(LogFilter(**fields))).items]  # type: ignore[arg-type]

    assert await ids(model="dall-e-3") == ["log-000004", "log-000003", "log-000001"]
    assert await ids(config_id="cfg-a") == ["log-000002", "log-000001"]
    assert await ids(fallback_used=True) == ["log-000001"]
    assert await ids(fallback_used=False) == ["log-000004", "log-000003", "log-000002"]
    assert await ids(model="dall-e-3", config_id="cfg-a", fallback_used=True) == ["log-000001"]
    assert await ids(model="core", fallback_used=True) == []


async def test_the_new_filters_are_served_by_indexes(sqlite_store: SqliteStore) -> None:
    store = sqlite_store
    for column, index in (
        ("model", "request_logs_by_model"),
        ("config_id", "request_logs_by_config"),
        ("fallback_used", "request_logs_by_fallback"),
    ):
        plan = await store._read(  # the query plan of the filtered listing
            f"EXPLAIN QUERY PLAN SELECT payload FROM request_logs WHERE {column} = ? "
            "ORDER BY create_time DESC, id DESC LIMIT 10",
            ("x",),
        )
        details = " ".join(str(row[-1]) for row in plan)
        assert f"SEARCH request_logs USING INDEX {index}" in details, details
        assert "TEMP B-TREE" not in details  # the index serves the order too: no sort


async def test_retention_prunes_by_age_and_count_relative_to_now(store: Store) -> None:
    await store.append_logs([record(i) for i in range(20)])
    retention = LogRetention(
        store, max_age=timedelta(seconds=10), max_records=5, now=lambda: T0 + timedelta(seconds=15)
    )
    assert await retention.prune_once() == 15  # 5 too old, then 10 over the count
    assert await all_ids(store) == [f"log-{i:06d}" for i in range(19, 14, -1)]


async def test_retention_runs_in_the_background_until_closed(store: Store) -> None:
    await store.append_logs([record(i) for i in range(30)])
    retention = LogRetention(store, max_age=None, max_records=10, interval=0.05)
    await retention.start()
    try:
        for _ in range(200):
            if len(await all_ids(store)) == 10:
                break
            await asyncio.sleep(0.02)
        assert len(await all_ids(store)) == 10
        await store.append_logs([record(i) for i in range(30, 40)])  # pruned again at the next run
        for _ in range(200):
            if len(await all_ids(store)) == 10:
                break
            await asyncio.sleep(0.02)
        assert (await all_ids(store))[0] == "log-000039" and len(await all_ids(store)) == 10
    finally:
        await retention.close()


async def test_a_failing_prune_is_logged_and_retried(
    sqlite_store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = sqlite_store

    class FlakyStore(SqliteStore):
        failures = 1

        async def prune_logs(self, older_than: datetime | None = None, keep_max: int | None = None) -> int:
            if self.failures:
                self.failures -= 1
                raise OSError("disk full")
            return await super().prune_logs(older_than, keep_max)

    flaky = FlakyStore(store.path)
    await flaky.open()
    try:
        await flaky.append_logs([record(i) for i in range(5)])
        retention = LogRetention(flaky, max_age=None, max_records=1, interval=0.05)
        await retention.start()
        for _ in range(200):
            if len(await all_ids(flaky)) == 1:
                break
            await asyncio.sleep(0.02)
        await retention.close()
        assert len(await all_ids(flaky)) == 1
        assert any("disk full" in r.getMessage() for r in caplog.records)
    finally:
        await flaky.close()


def test_retention_without_limits_is_disabled(tmp_path: Path) -> None:
    assert not LogRetention(SqliteStore(tmp_path / "x.db"), max_age=None, max_records=None).enabled
    with pytest.raises(ValueError):
        LogRetention(SqliteStore(tmp_path / "x.db"), max_age=None, max_records=-1)
