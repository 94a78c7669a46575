"""Analytics rollups (storage/analytics_rollup.py): an answer read from rollup cells plus the raw tail
is the answer the raw log gives, exactly, whatever part of the log is rolled up or pruned; latency
percentiles from the histogram stay within its stated error; the background job catches up."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imagegateway_server.storage.analytics import AnalyticsQuery, AnalyticsResult, GroupBy, bucket_size_for, percentile
from imagegateway_server.storage.analytics_rollup import plan_range
from imagegateway_server.storage.latency_histogram import (
    LATENCY_RELATIVE_ERROR,
    bin_latency,
    histogram_percentile,
    latency_bin,
)
from imagegateway_server.storage.migrations import load_migrations
from imagegateway_server.storage.records import LogFilter, LogRecord
from imagegateway_server.storage.sqlite import SqliteStore
from tests.unit.test_storage_analytics import T0, attempt, expected, record, seeded_mix

TARGETS = ("targets[0]", "targets[1]", "targets[2]")
GROUPINGS: list[tuple[GroupBy, str, Any]] = [
    (GroupBy.PROVIDER, "", lambda rec, doc: rec.provider),
    (GroupBy.MODEL, "", lambda rec, doc: rec.model),
    (GroupBy.CONFIG, "", lambda rec, doc: rec.config_id or "inline"),
    (GroupBy.API_KEY, "", lambda rec, doc: rec.caller_key_id),
    (
        GroupBy.TARGET,
        "",
        lambda rec, doc: doc.get("served_target") or (doc["attempts"][-1]["target"] if doc.get("attempts") else ""),
    ),
    (GroupBy.METADATA, "_user", lambda rec, doc: doc.get("metadata", {}).get("_user", "")),
]

attempts_strategy = st.lists(
    st.builds(
        lambda target, provider, kind, retry, circuit: attempt(
            target, provider, error_kind=kind, retry_index=retry, **({"circuit_open": True} if circuit else {})
        ),
        st.sampled_from(TARGETS),
        st.sampled_from(("openai", "stability-ai")),
        st.sampled_from(("", "ERROR_KIND_TIMEOUT", "ERROR_KIND_RATE_LIMITED")),
        st.integers(0, 1),
        st.booleans(),
    ),
    max_size=3,
)
request_strategy = st.fixed_dictionaries(
    {
        "minutes": st.floats(0, 3 * 24 * 60 - 1, allow_nan=False),
        "attempts": attempts_strategy,
        "served": st.booleans(),
        "key": st.sampled_from(("key-a", "key-b", "key-c")),
        "config_id": st.sampled_from(("", "cfg-1", "cfg-2")),
        "metadata": st.sampled_from(({}, {"_user": "ann"}, {"_user": "bob", "team": "x"}, {"team": "y"})),
        "cache_hit": st.booleans(),
        "images": st.integers(0, 3),
        "cost": st.sampled_from((0.0, 0.04, 0.013, 0.1 / 3, 0.08)),
        "latency_ms": st.integers(0, 120_000),
        "error_kind": st.sampled_from(("ERROR_KIND_UPSTREAM_UNAVAILABLE", "ERROR_KIND_BAD_REQUEST")),
    }
)


def records_of(requests: list[dict[str, Any]]) -> list[LogRecord]:
    return [record(number, **request) for number, request in enumerate(requests)]


def ranged_query(
    start_minutes: float, hours: float, bucket_hours: int, grouping: int, key: str | None
) -> AnalyticsQuery:
    """A query over the hours from ``start_minutes`` after T0, in buckets of ``bucket_hours`` (0: as
    the API picks them)."""
    group_by, metadata_key, _ = GROUPINGS[grouping]
    start = T0 + timedelta(minutes=start_minutes)
    end = start + timedelta(hours=hours)
    return AnalyticsQuery(
        start=start,
        end=end,
        bucket_size=timedelta(hours=bucket_hours) if bucket_hours else bucket_size_for(start, end),
        group_by=group_by,
        metadata_key=metadata_key,
        log_filter=LogFilter(caller_key_id=key),
    )


def in_range(records: list[LogRecord], query: AnalyticsQuery) -> list[LogRecord]:
    wanted = query.log_filter.caller_key_id
    return [
        r for r in records if query.start <= r.create_time < query.end and (wanted is None or r.caller_key_id == wanted)
    ]


def assert_counts_agree(result: AnalyticsResult, want: dict[str, dict[str, Any]], binned: bool) -> None:
    """Every count and the cost exactly as the raw records say; latency exact or within the histogram's error."""
    assert {row.group for row in result.rows} == set(want)
    for row in result.rows:
        cell, totals = want[row.group], row.totals
        assert (
            totals.requests, totals.successes, totals.errors, dict(totals.errors_by_kind), totals.fallbacks,
            dict(totals.fallback_pairs), totals.attempts, totals.failed_attempts, totals.retries,
            totals.cache_hits, totals.images,
        ) == (
            cell["requests"], cell["successes"], cell["errors"], dict(cell["kinds"]), cell["fallbacks"],
            dict(cell["pairs"]), cell["attempts"], cell["failed"], cell["retries"], cell["cache_hits"],
            cell["images"],
        ), row.group  # fmt: skip
        assert totals.cost_usd == cell["cost_nanos"] / 1e9
        latencies = sorted(cell["lat"])
        for fraction, got in (
            (0.5, totals.latency_p50_ms),
            (0.95, totals.latency_p95_ms),
            (0.99, totals.latency_p99_ms),
        ):
            exact = percentile(latencies, fraction)
            if binned:
                assert abs(got - exact) <= exact * LATENCY_RELATIVE_ERROR + 1, (row.group, fraction, got, exact)
            else:
                assert got == exact


def expected_with_nanos(records: list[LogRecord], group_of: Any) -> dict[str, dict[str, Any]]:
    want = expected(records, group_of)
    for cell in want.values():
        cell["cost_nanos"] = 0
    for rec in records:
        want[group_of(rec, json.loads(rec.payload))]["cost_nanos"] += round(rec.cost_usd * 1e9)
    return want


async def opened(path: Path) -> SqliteStore:
    store = SqliteStore(path, rollup_interval=0)
    await store.open()
    return store


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    requests=st.lists(request_strategy, max_size=50),
    rolled=st.integers(0, 60),
    prune_at_minutes=st.none() | st.floats(0, 3 * 24 * 60),
    start_minutes=st.floats(-120, 2 * 24 * 60),
    hours=st.floats(0.5, 80),
    bucket_hours=st.sampled_from((0, 1, 6, 24, 48)),
    grouping=st.integers(0, len(GROUPINGS) - 1),
    key=st.none() | st.sampled_from(("key-a", "key-b")),
)
def test_rollups_plus_the_raw_tail_agree_with_the_raw_log(
    requests: list[dict[str, Any]],
    rolled: int,
    prune_at_minutes: float | None,
    start_minutes: float,
    hours: float,
    bucket_hours: int,
    grouping: int,
    key: str | None,
) -> None:
    records = records_of(requests)
    query = ranged_query(start_minutes, hours, bucket_hours, grouping, key)

    async def answers() -> tuple[AnalyticsResult, AnalyticsResult]:
        with tempfile.TemporaryDirectory() as folder:
            partly, never = await opened(Path(folder) / "partly.db"), await opened(Path(folder) / "never.db")
            try:
                for store in (partly, never):
                    await store.append_logs(records)
                # Roll some up in small transactions, append nothing more, prune: cells hold what they must.
                await partly.roll_up_logs(rolled // 2)
                await partly.roll_up_logs(rolled - rolled // 2)
                if prune_at_minutes is not None:
                    cutoff = T0 + timedelta(minutes=prune_at_minutes)
                    assert await partly.prune_logs(older_than=cutoff) == await never.prune_logs(older_than=cutoff)
                return await partly.aggregate_logs(query), await never.aggregate_logs(query)
            finally:
                await partly.close()
                await never.close()

    from_rollups, from_raw = asyncio.run(answers())
    # Every bucket of every row, percentiles included: where the numbers were read from does not show.
    assert from_rollups == from_raw
    kept = records
    if prune_at_minutes is not None:
        kept = [r for r in records if r.create_time >= T0 + timedelta(minutes=prune_at_minutes)]
    binned = bool(plan_range(query).rollups)
    assert_counts_agree(from_rollups, expected_with_nanos(in_range(kept, query), GROUPINGS[grouping][2]), binned)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened_store = await opened(tmp_path / "gateway.db")
    yield opened_store
    await opened_store.close()


def day_query(group_by: GroupBy = GroupBy.PROVIDER, metadata_key: str = "", **filters: Any) -> AnalyticsQuery:
    start = T0 - timedelta(hours=3)
    return AnalyticsQuery(
        start, start + timedelta(hours=30), timedelta(hours=1), group_by, metadata_key, LogFilter(**filters)
    )


async def test_a_query_of_whole_hours_reads_rollups_and_the_edges_raw(store: SqliteStore) -> None:
    query = day_query()
    plan = plan_range(query)
    # 07:07:30 to 13:07:30 the next day in hourly buckets: the whole hours from 08:00 to 13:00 come
    # from hour cells, the 52.5 minutes before and 7.5 after from raw rows.
    assert [(span, high - low) for span, low, high in plan.rollups] == [(3600, 29 * 3600 * 10**6)]
    assert [high - low for low, high in plan.raw_spans] == [52.5 * 60 * 10**6, 7.5 * 60 * 10**6]
    records = seeded_mix()
    await store.append_logs(records)
    assert await store.roll_up_logs() == len(records)
    assert await store.roll_up_logs() == 0
    cells = await store._read(
        "SELECT count(*), sum(requests) FROM request_log_rollups WHERE span_seconds = 3600 AND with_metadata = 0"
    )
    assert cells[0][1] == len(records) and cells[0][0] < len(records)  # requests share cells
    for group_by, metadata_key, group_of in GROUPINGS:
        result = await store.aggregate_logs(day_query(group_by, metadata_key))
        assert_counts_agree(result, expected_with_nanos(records, group_of), binned=True)


async def test_a_generate_keys_filter_keeps_other_keys_out_of_rollups_also_by_metadata(store: SqliteStore) -> None:
    await store.append_logs(seeded_mix())
    await store.roll_up_logs()
    result = await store.aggregate_logs(day_query(GroupBy.METADATA, "_user", caller_key_id="key-a"))
    ann = next(row for row in result.rows if row.group == "ann")
    assert ann.totals.requests == 3  # key-b's request from ann is in another cell and not counted
    assert ann.totals.cost_usd == 0.08
    keys = await store.aggregate_logs(day_query(GroupBy.API_KEY, caller_key_id="key-a"))
    assert [row.group for row in keys.rows] == ["key-a"]


async def test_pruning_takes_requests_out_of_their_cells(store: SqliteStore) -> None:
    await store.append_logs(seeded_mix())
    await store.roll_up_logs()
    assert await store.prune_logs(keep_max=0) == len(seeded_mix())
    assert (await store._read("SELECT count(*) FROM request_log_rollups"))[0][0] == 0
    assert (await store.aggregate_logs(day_query())).rows == []


async def test_the_background_job_rolls_new_requests_up_within_its_interval(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db", rollup_interval=0.05)
    await store.open()
    try:
        await store.append_logs(seeded_mix())
        for _ in range(200):
            left = await store._read("SELECT count(*) FROM request_logs WHERE rolled_up = 0")
            if left[0][0] == 0:
                break
            await asyncio.sleep(0.05)
        assert left[0][0] == 0
        # Each request counts in six cells: its hour, six hours and day, with and without its metadata.
        assert (await store._read("SELECT sum(requests) FROM request_log_rollups"))[0][0] == 6 * len(seeded_mix())
    finally:
        await store.close()


async def test_records_from_before_the_rollups_are_rolled_up_after_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "apply_time INTEGER NOT NULL)"
        )
        for migration in load_migrations("sqlite")[:6]:
            db.executescript(migration.sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (migration.version, migration.name, 0))
    old = await opened(path)
    await old.close()
    with sqlite3.connect(path) as db:  # rows as version 6 wrote them: no rolled_up marker
        db.execute("UPDATE request_logs SET rolled_up = 0")
    store = await opened(path)
    try:
        await store.append_logs(seeded_mix())
        before = await store.aggregate_logs(day_query(GroupBy.TARGET))
        assert await store.roll_up_logs() == len(seeded_mix())
        assert await store.aggregate_logs(day_query(GroupBy.TARGET)) == before
    finally:
        await store.close()


def test_the_latency_histogram_is_exact_below_64_ms_and_within_1_6_percent_above() -> None:
    assert [bin_latency(latency_bin(v)) for v in range(64)] == list(range(64))
    previous = -1
    for value in [*range(64, 5000), *range(5000, 10_000_000, 997)]:
        bin_index = latency_bin(value)
        assert bin_index >= previous  # bins keep the values' order
        previous = bin_index
        assert abs(bin_latency(bin_index) - value) <= value * LATENCY_RELATIVE_ERROR
    assert LATENCY_RELATIVE_ERROR == 1 / 64
    bins = Counter(latency_bin(v) for v in range(1, 201))
    # The bin of the exact nearest-rank value (100 ms lies in the 2 ms wide bin 100-101, reported as 101).
    assert histogram_percentile(bins, 0.5) == bin_latency(latency_bin(100)) == 101
    assert histogram_percentile(bins, 0.99) == bin_latency(latency_bin(198))
    assert histogram_percentile({}, 0.5) == 0


def test_short_ranges_and_trace_ids_stay_raw_and_exact() -> None:
    now = datetime(2025, 3, 4, 10, 7, 31, tzinfo=UTC)
    hour = AnalyticsQuery(now - timedelta(hours=1), now, timedelta(minutes=2), GroupBy.PROVIDER)
    assert plan_range(hour).rollups == ()
    traced = AnalyticsQuery(
        now - timedelta(days=2), now, timedelta(hours=1), GroupBy.PROVIDER, log_filter=LogFilter(trace_id="t1")
    )
    assert plan_range(traced).rollups == ()


def test_a_month_in_daily_buckets_reads_day_cells_and_hour_cells_at_the_edges() -> None:
    end = datetime(2025, 3, 4, 10, 7, 31, tzinfo=UTC)
    month = AnalyticsQuery(end - timedelta(days=30), end, timedelta(days=1), GroupBy.METADATA, "_user")
    plan = plan_range(month)
    hour, day = 3600 * 10**6, 86400 * 10**6
    assert [(span, (high - low) / hour) for span, low, high in plan.rollups] == [
        (3600, 1),  # 2025-02-02 11:00 to 12:00
        (21600, 12),  # to midnight
        (86400, 29 * 24),
        (21600, 6),  # 2025-03-04 00:00 to 06:00
        (3600, 4),  # to 10:00
    ]
    assert plan.with_metadata and all(low % day == 0 for span, low, _ in plan.rollups if span == 86400)
