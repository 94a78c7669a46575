"""PostgreSQL's analytics rollups (migration 8, storage/analytics_rollup.py in its dialect), on a real
server: its answers are SQLite's, to the last digit and percentile, however much of the log is
rolled up or pruned; two processes rolling up at once count every request once; the background job
catches up."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from imagegateway_server.storage.analytics import AnalyticsQuery, AnalyticsResult
from imagegateway_server.storage.analytics_rollup import plan_range
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.records import LogFilter, LogRecord
from imagegateway_server.storage.sqlite import SqliteStore
from tests.postgres_server import PostgresServer
from tests.unit.test_analytics_rollup import GROUPINGS, assert_counts_agree, expected_with_nanos
from tests.unit.test_storage_analytics import T0, seeded_mix

# seeded_mix (half an hour of traffic) again at these offsets: three days, not on hour boundaries.
OFFSETS = [timedelta(hours=h, minutes=m) for h, m in ((0, 0), (5, 40), (26, 10), (49, 55), (70, 5))]


def spread_mix() -> list[LogRecord]:
    return [
        dataclasses.replace(record, id=f"{record.id}_{index}", create_time=record.create_time + offset)
        for index, offset in enumerate(OFFSETS)
        for record in seeded_mix()
    ]


def queries() -> list[AnalyticsQuery]:
    """Ranges that read day, six-hour and hour cells with raw edges, in chart and totals buckets."""
    start = T0 - timedelta(hours=2, minutes=13)
    found = []
    for group_by, metadata_key, _ in GROUPINGS:
        for bucket, hours in ((timedelta(hours=1), 40), (timedelta(hours=6), 76), (timedelta(days=4), 80)):
            for log_filter in (LogFilter(), LogFilter(caller_key_id="key-a"), LogFilter(success=False)):
                found.append(
                    AnalyticsQuery(start, start + timedelta(hours=hours), bucket, group_by, metadata_key, log_filter)
                )
    assert all(plan_range(query).rollups for query in found)
    return found


@pytest.fixture
async def both(tmp_path: Path, postgres_server: PostgresServer) -> AsyncIterator[tuple[SqliteStore, PostgresStore]]:
    url = postgres_server.fresh_database()
    sqlite, postgres = SqliteStore(tmp_path / "same.db", rollup_interval=0), PostgresStore(url, rollup_interval=0)
    await sqlite.open()
    await postgres.open()
    try:
        yield sqlite, postgres
    finally:
        await sqlite.close()
        await postgres.close()
        postgres_server.drop_database(url)


async def answers(store: SqliteStore | PostgresStore, asked: list[AnalyticsQuery]) -> list[AnalyticsResult]:
    return await store.aggregate_logs_together(asked)


def counts_only(results: list[AnalyticsResult]) -> list[Any]:
    """The answers without latency percentiles (which are exact raw and binned from cells)."""
    latency = {"latency_p50_ms": 0, "latency_p95_ms": 0, "latency_p99_ms": 0}
    return [
        [(row.group, dataclasses.replace(row.totals, **latency)) for row in result.rows]
        + [[dataclasses.replace(b.counts, **latency) for b in row.buckets] for row in result.rows]
        for result in results
    ]


async def test_both_backends_answer_alike_from_rollups_whatever_is_rolled_up_or_pruned(
    both: tuple[SqliteStore, PostgresStore],
) -> None:
    sqlite, postgres = both
    records = spread_mix()
    asked = queries()
    for store in both:
        await store.append_logs(records)
    raw = await answers(sqlite, asked)
    assert await answers(postgres, asked) == raw
    # The raw answer agrees with the records themselves.
    for group_by, metadata_key, group_of in GROUPINGS:
        query = next(q for q in asked if (q.group_by, q.metadata_key) == (group_by, metadata_key))
        in_range = [r for r in records if query.start <= r.create_time < query.end]
        assert_counts_agree(raw[asked.index(query)], expected_with_nanos(in_range, group_of), binned=True)

    for chunk in (7, 20, len(records)):  # part of the log, more of it, all of it
        rolled = [await store.roll_up_logs(chunk) for store in both]
        assert rolled[0] == rolled[1] > 0
        now = [await answers(store, asked) for store in both]
        assert now[0] == now[1]
        assert counts_only(now[0]) == counts_only(raw)  # rolled up or not, the same numbers
    cells = [
        await sqlite._read("SELECT count(*), sum(requests), sum(cost_nanos) FROM request_log_rollups"),
        await postgres._read("SELECT count(*), sum(requests), sum(cost_nanos) FROM request_log_rollups"),
    ]
    assert [tuple(int(v) for v in found[0]) for found in cells] == [tuple(int(v) for v in cells[0][0])] * 2
    assert int(cells[1][0][1]) == 6 * len(records)  # hour, six hours, day; with and without metadata

    # Pruning the first day and a half takes its requests out of the cells on both.
    cut = T0 + timedelta(hours=30)
    assert await sqlite.prune_logs(older_than=cut) == await postgres.prune_logs(older_than=cut) > 0
    await postgres.append_logs(records[-3:])  # already stored: nothing changes
    pruned = [await answers(store, asked) for store in both]
    assert pruned[0] == pruned[1]
    kept = [r for r in records if r.create_time >= cut]
    group_by, metadata_key, group_of = GROUPINGS[0]
    query = asked[3]  # by provider, 76 hours in six-hour buckets, unfiltered
    assert (query.group_by, query.log_filter) == (group_by, LogFilter())
    assert_counts_agree(pruned[1][3], expected_with_nanos(kept, group_of), binned=True)


async def test_two_processes_rolling_up_at_once_count_each_request_once(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.fresh_database()
    stores = [PostgresStore(url, rollup_interval=0) for _ in range(2)]
    try:
        for store in stores:
            await store.open()
        records = spread_mix()
        await stores[0].append_logs(records)
        while sum(await asyncio.gather(*(store.roll_up_logs(9) for store in stores for _ in range(3)))):
            pass
        totals = await stores[1]._read("SELECT sum(requests), sum(images) FROM request_log_rollups")
        assert int(totals[0][0]) == 6 * len(records)
        assert int(totals[0][1]) == 6 * sum(r.payload.count('"sha256"') for r in records)
        assert (await stores[0]._read("SELECT count(*) FROM request_logs WHERE NOT rolled_up"))[0][0] == 0
    finally:
        for store in stores:
            await store.close()
        postgres_server.drop_database(url)


async def test_the_postgresql_job_rolls_new_requests_up_in_the_background(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    store = PostgresStore(url, rollup_interval=0.05)
    await store.open()
    try:
        await store.append_logs(seeded_mix())
        for _ in range(400):
            left = await store._read("SELECT count(*) FROM request_logs WHERE NOT rolled_up")
            if left[0][0] == 0:
                break
            await asyncio.sleep(0.05)
        assert left[0][0] == 0
        assert int((await store._read("SELECT sum(requests) FROM request_log_rollups"))[0][0]) == 6 * len(seeded_mix())
    finally:
        await store.close()
        postgres_server.drop_database(url)


async def test_catching_up_a_backlog_refreshes_the_planners_statistics(postgres_server: PostgresServer) -> None:
    # Stale statistics count most rows as not rolled up, and the planner then reads a month of the
    # log instead of the few unrolled rows: after a backlog, the store analyzes the table.
    url = postgres_server.fresh_database()
    store = PostgresStore(url, rollup_interval=0)
    await store.open()
    try:
        await store.append_logs(spread_mix())
        analyzed = "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'request_logs'"
        assert await store.roll_up_logs(10) == 10  # a full chunk: a backlog
        assert (await store._read(analyzed))[0][0] is None
        while await store.roll_up_logs(10) == 10:
            pass
        assert (await store._read(analyzed))[0][0] is not None
    finally:
        await store.close()
        postgres_server.drop_database(url)
