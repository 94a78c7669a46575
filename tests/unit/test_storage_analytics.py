"""Analytics from the request log (storage/analytics.py, SqliteStore.aggregate_logs): the numbers
agree with the raw records, buckets are UTC-aligned with empty ones zero, filters narrow them."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from imagegateway_server.storage.analytics import (
    AnalyticsQuery,
    AnalyticsResult,
    GroupBy,
    bucket_size_for,
    bucket_starts,
    percentile,
)
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.migrations import load_migrations
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.records import LogFilter, LogRecord
from imagegateway_server.storage.sqlite import SqliteStore
from tests.postgres_server import PostgresServer

# 10:07:30 UTC: deliberately not on a bucket boundary.
T0 = datetime(2025, 3, 4, 10, 7, 30, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py)."""
    return any_store


def attempt(target: str, provider: str, *, error_kind: str = "", retry_index: int = 0, **more: Any) -> dict[str, Any]:
    return {
        "target": target,
        "provider": provider,
        "model": "m-" + provider,
        "status_code": 503 if error_kind else 200,
        **({"error_kind": error_kind} if error_kind else {}),
        **({"retry_index": retry_index} if retry_index else {}),
        **more,
    }


def record(
    number: int,
    minutes: float,
    *,
    attempts: list[dict[str, Any]],
    served: bool = True,
    key: str = "key-a",
    config_id: str = "",
    metadata: dict[str, str] | None = None,
    cache_hit: bool = False,
    images: int = 1,
    cost: float = 0.0,
    latency_ms: int = 100,
    error_kind: str = "ERROR_KIND_UPSTREAM_UNAVAILABLE",
) -> LogRecord:
    """A record as observability/log_records.py writes it (the payload in protobuf JSON form)."""
    last = attempts[-1] if attempts else {"provider": "openai", "model": "m-openai", "target": ""}
    served_target = last["target"] if served and attempts else ""
    fallback = served and bool(attempts) and served_target != attempts[0]["target"]
    status = 200 if served else 503
    payload: dict[str, Any] = {
        "id": f"log_{number}",
        "status_code": status,
        "caller_key_id": key,
        "config_id": config_id,
        "provider": last["provider"],
        "model": last["model"],
        "served_target": served_target,
        "fallback_used": fallback,
        "cache_status": "CACHE_STATUS_HIT" if cache_hit else "CACHE_STATUS_MISS",
        "attempts": attempts,
        "images": [{"sha256": "ab", "width": 8} for _ in range(images if served else 0)],
        "latency_ms": str(latency_ms),
        "metadata": metadata or {},
        "cost_usd": cost,
    }
    if not served:
        payload["error_kind"] = error_kind
    payload = {k: v for k, v in payload.items() if v not in ("", False, [], {}, 0, 0.0)}
    return LogRecord(
        id=f"log_{number}",
        trace_id=f"t{number}",
        create_time=T0 + timedelta(minutes=minutes),
        status_code=status,
        provider=last["provider"],
        model=last["model"],
        caller_key_id=key,
        config_id=config_id,
        fallback_used=fallback,
        payload=json.dumps(payload),
        cost_usd=cost,
    )


def seeded_mix() -> list[LogRecord]:
    a = "targets[0]"
    b = "targets[1]"
    return [
        # key-a: plain successes, a retry, a fallback, failures, a cache hit; metadata _user.
        record(1, 0, attempts=[attempt(a, "openai")], cost=0.04, latency_ms=120, metadata={"_user": "ann"}),
        record(2, 1, attempts=[attempt(a, "openai")], cost=0.04, latency_ms=80, images=2, config_id="cfg-1"),
        record(
            3,
            5,
            attempts=[attempt(a, "openai", error_kind="ERROR_KIND_RATE_LIMITED"), attempt(a, "openai", retry_index=1)],
            cost=0.04,
            latency_ms=900,
            metadata={"_user": "ann"},
        ),
        record(
            4,
            12,
            attempts=[attempt(a, "openai", error_kind="ERROR_KIND_TIMEOUT"), attempt(b, "stability")],
            cost=0.03,
            latency_ms=1500,
            config_id="cfg-1",
            metadata={"_user": "bob"},
        ),
        record(
            5,
            13,
            attempts=[
                attempt(a, "openai", error_kind="ERROR_KIND_TIMEOUT"),
                attempt(b, "stability", error_kind="ERROR_KIND_UPSTREAM_UNAVAILABLE"),
            ],
            served=False,
            latency_ms=2000,
            error_kind="ERROR_KIND_UPSTREAM_UNAVAILABLE",
            metadata={"_user": "bob"},
        ),
        record(6, 14, attempts=[], served=False, error_kind="ERROR_KIND_BAD_REQUEST", latency_ms=2),
        record(7, 14.5, attempts=[], cache_hit=True, images=3, latency_ms=3, metadata={"_user": "ann"}),
        record(
            8,
            15,
            attempts=[attempt(a, "openai", circuit_open=True), attempt(b, "stability")],
            cost=0.03,
            latency_ms=300,
        ),
        # key-b: another team, metadata _user ann too (a generate key of key-a must not see it).
        record(9, 2, attempts=[attempt(a, "openai")], key="key-b", cost=0.08, latency_ms=50, metadata={"_user": "ann"}),
        record(
            10,
            29,
            attempts=[attempt(a, "stability", error_kind="ERROR_KIND_CONTENT_POLICY")],
            served=False,
            key="key-b",
            error_kind="ERROR_KIND_CONTENT_POLICY",
            latency_ms=40,
        ),
    ]


def expected(records: list[LogRecord], group_of: Any) -> dict[str, dict[str, Any]]:
    """The numbers by group, counted straight from the raw records' payloads."""
    groups: dict[str, dict[str, Any]] = {}
    for rec in records:
        doc = json.loads(rec.payload)
        calls = [a for a in doc.get("attempts", []) if not a.get("circuit_open")]
        cell = groups.setdefault(
            group_of(rec, doc),
            {
                "requests": 0, "successes": 0, "errors": 0, "kinds": Counter(), "fallbacks": 0, "pairs": Counter(),
                "attempts": 0, "failed": 0, "retries": 0, "cache_hits": 0, "images": 0, "cost": 0.0, "lat": [],
            },
        )  # fmt: skip
        cell["requests"] += 1
        ok = 200 <= doc["status_code"] < 300
        cell["successes"] += ok
        if not ok:
            cell["errors"] += 1
            cell["kinds"][doc.get("error_kind", "ERROR_KIND_UNSPECIFIED")] += 1
        if doc.get("fallback_used"):
            cell["fallbacks"] += 1
            cell["pairs"][doc["attempts"][0]["target"], doc["served_target"]] += 1
        cell["attempts"] += len(calls)
        cell["failed"] += sum(1 for a in calls if a.get("error_kind"))
        cell["retries"] += sum(1 for a in calls if a.get("retry_index", 0) > 0)
        hit = doc.get("cache_status") == "CACHE_STATUS_HIT"
        cell["cache_hits"] += hit
        cell["images"] += len(doc.get("images", []))
        cell["cost"] += doc.get("cost_usd", 0.0)
        if calls and not hit:
            cell["lat"].append(int(doc["latency_ms"]))
    return groups


def assert_agrees(result: AnalyticsResult, want: dict[str, dict[str, Any]]) -> None:
    assert {row.group for row in result.rows} == set(want)
    for row in result.rows:
        cell, totals = want[row.group], row.totals
        lat = sorted(cell["lat"])
        assert (
            totals.requests, totals.successes, totals.errors, dict(totals.errors_by_kind), totals.fallbacks,
            dict(totals.fallback_pairs), totals.attempts, totals.failed_attempts, totals.retries,
            totals.cache_hits, totals.images,
        ) == (
            cell["requests"], cell["successes"], cell["errors"], dict(cell["kinds"]), cell["fallbacks"],
            dict(cell["pairs"]), cell["attempts"], cell["failed"], cell["retries"], cell["cache_hits"],
            cell["images"],
        ), row.group  # fmt: skip
        assert totals.cost_usd == pytest.approx(cell["cost"])
        assert (totals.latency_p50_ms, totals.latency_p95_ms, totals.latency_p99_ms) == (
            percentile(lat, 0.5),
            percentile(lat, 0.95),
            percentile(lat, 0.99),
        )
        # The buckets add up to the totals.
        assert sum(b.counts.requests for b in row.buckets) == totals.requests
        assert sum(b.counts.images for b in row.buckets) == totals.images
        assert sum(b.counts.cost_usd for b in row.buckets) == pytest.approx(totals.cost_usd)


def query(group_by: GroupBy = GroupBy.PROVIDER, metadata_key: str = "", **filters: Any) -> AnalyticsQuery:
    return AnalyticsQuery(
        start=T0,
        end=T0 + timedelta(minutes=30),
        bucket_size=timedelta(minutes=5),
        group_by=group_by,
        metadata_key=metadata_key,
        log_filter=LogFilter(**filters),
    )


@pytest.mark.parametrize(
    ("group_by", "metadata_key", "group_of"),
    [
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
    ],
)
async def test_aggregates_agree_with_the_raw_records(
    store: Store, group_by: GroupBy, metadata_key: str, group_of: Any
) -> None:
    records = seeded_mix()
    await store.append_logs(records)
    result = await store.aggregate_logs(query(group_by, metadata_key))
    assert_agrees(result, expected(records, group_of))


async def test_the_seeded_mix_by_provider_in_numbers(store: Store) -> None:
    await store.append_logs(seeded_mix())
    rows = {row.group: row.totals for row in (await store.aggregate_logs(query())).rows}
    openai, stability = rows["openai"], rows["stability"]
    assert (openai.requests, openai.successes, openai.errors, openai.cache_hits, openai.images) == (6, 5, 1, 1, 8)
    assert dict(openai.errors_by_kind) == {"ERROR_KIND_BAD_REQUEST": 1}
    assert openai.retries == 1 and openai.fallbacks == 0
    assert (stability.requests, stability.fallbacks, stability.errors) == (4, 2, 2)
    assert dict(stability.fallback_pairs) == {("targets[0]", "targets[1]"): 2}
    assert dict(stability.errors_by_kind) == {
        "ERROR_KIND_CONTENT_POLICY": 1,
        "ERROR_KIND_UPSTREAM_UNAVAILABLE": 1,
    }
    # Latency: requests that reached a provider, the cache hit (3 ms) and the refused one (2 ms) left out.
    assert (openai.latency_p50_ms, openai.latency_p99_ms) == (80, 900)
    assert openai.cost_usd == pytest.approx(0.20)


async def test_buckets_are_utc_aligned_and_empty_ones_are_zero(store: Store) -> None:
    await store.append_logs(seeded_mix())
    result = await store.aggregate_logs(query())
    # The range starts at 10:07:30; five-minute buckets start on the clock: 10:05, 10:10, ... 10:35.
    assert result.bucket_starts[0] == datetime(2025, 3, 4, 10, 5, tzinfo=UTC)
    assert all(start.tzinfo is UTC and start.minute % 5 == 0 and start.second == 0 for start in result.bucket_starts)
    assert len(result.bucket_starts) == 7
    openai = next(row for row in result.rows if row.group == "openai")
    assert [b.start for b in openai.buckets] == result.bucket_starts
    # 10:07:30 + 0, 1, 2 min -> 10:05 (logs 1, 2, 9); + 5 min -> 10:10 (log 3); + 14, 14.5 min -> 10:20.
    assert [b.counts.requests for b in openai.buckets] == [3, 1, 0, 2, 0, 0, 0]
    empty = openai.buckets[-1].counts
    assert (empty.requests, empty.errors, empty.cost_usd, empty.latency_p95_ms, dict(empty.errors_by_kind)) == (
        0,
        0,
        0.0,
        0,
        {},
    )


async def test_a_key_filter_hides_other_keys_also_through_metadata(store: Store) -> None:
    await store.append_logs(seeded_mix())
    result = await store.aggregate_logs(query(GroupBy.METADATA, "_user", caller_key_id="key-a"))
    ann = next(row for row in result.rows if row.group == "ann")
    assert ann.totals.requests == 3  # key-b's request from ann (log 9) is not counted
    assert ann.totals.cost_usd == pytest.approx(0.08)
    everything = await store.aggregate_logs(query(GroupBy.API_KEY, caller_key_id="key-a"))
    assert [row.group for row in everything.rows] == ["key-a"]


async def test_filters_and_the_range_narrow_the_records(store: Store) -> None:
    records = seeded_mix()
    await store.append_logs(records)
    failures = await store.aggregate_logs(query(GroupBy.API_KEY, success=False))
    assert {row.group: row.totals.requests for row in failures.rows} == {"key-a": 2, "key-b": 1}
    late = AnalyticsQuery(T0 + timedelta(minutes=14), T0 + timedelta(minutes=15), timedelta(minutes=1), GroupBy.MODEL)
    assert sum(row.totals.requests for row in (await store.aggregate_logs(late)).rows) == 2  # log 6 and 7


def test_bucket_sizes_fit_the_range() -> None:
    now = datetime(2025, 3, 4, 10, 7, 31, tzinfo=UTC)
    for since, size in (
        (timedelta(minutes=30), timedelta(minutes=1)),
        (timedelta(hours=1), timedelta(minutes=2)),
        (timedelta(hours=24), timedelta(hours=1)),
        (timedelta(seconds=49), timedelta(seconds=2)),
        (timedelta(days=50), timedelta(days=2)),
        (timedelta(days=80), timedelta(days=2)),
        (timedelta(days=7), timedelta(hours=6)),
        (timedelta(days=400), timedelta(days=9)),
        (timedelta(days=30), timedelta(days=1)),
    ):
        assert bucket_size_for(now - since, now) == size, since
        assert 19 <= len(bucket_starts(now - since, now, size)) <= 48


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50, 95, 99)
    assert percentile([7], 0.99) == 7 and percentile([], 0.5) == 0


def test_a_query_refuses_a_metadata_key_that_could_escape_the_json_path() -> None:
    with pytest.raises(ValueError, match="metadata key"):
        query(GroupBy.METADATA, 'x"]')


async def test_aggregating_100k_records_takes_under_a_few_seconds(store: Store) -> None:
    """The timing figure of this slice (exact percentiles, no rollup): printed with ``-s``."""
    mix = seeded_mix()
    records = [
        LogRecord(
            **{
                **{f: getattr(r, f) for f in r.__slots__},
                "id": f"log_{i}",
                "create_time": T0 + timedelta(seconds=i % 1800),
            }
        )  # type: ignore[arg-type]
        for i in range(100_000)
        for r in (mix[i % len(mix)],)
    ]
    for start in range(0, len(records), 10_000):
        await store.append_logs(records[start : start + 10_000])
    started = time.perf_counter()
    result = await store.aggregate_logs(query(GroupBy.METADATA, "_user"))
    elapsed = time.perf_counter() - started
    print(f"\naggregate_logs over 100,000 records (metadata grouping, 7 buckets): {elapsed:.3f} s")
    assert sum(row.totals.requests for row in result.rows) == 100_000
    assert elapsed < 10


async def test_migration_6_fills_the_columns_of_old_records_and_clears_false_fallbacks(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = seeded_mix()
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "apply_time INTEGER NOT NULL)"
        )
        for migration in load_migrations("sqlite")[:5]:
            db.executescript(migration.sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (migration.version, migration.name, 0))
        for rec in old:
            payload = json.loads(rec.payload)
            failed_over = rec.status_code != 200 and len({a["target"] for a in payload.get("attempts", [])}) > 1
            if failed_over:  # what the log wrote before issue 14 for a request every target failed
                payload["fallback_used"] = True
            db.execute(
                "INSERT INTO request_logs (id, trace_id, create_time, status_code, provider, model, caller_key_id, "
                "config_id, fallback_used, payload, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rec.id, rec.trace_id, int(rec.create_time.timestamp() * 1_000_000), rec.status_code,
                    rec.provider, rec.model, rec.caller_key_id, rec.config_id,
                    int(rec.fallback_used or failed_over), json.dumps(payload), rec.cost_usd,
                ),
            )  # fmt: skip
    migrated = SqliteStore(path)
    await migrated.open()
    try:
        assert_agrees(
            await migrated.aggregate_logs(query(GroupBy.TARGET)),
            expected(
                old,
                lambda rec, doc: (
                    doc.get("served_target") or (doc["attempts"][-1]["target"] if doc.get("attempts") else "")
                ),
            ),
        )
        log_5 = await migrated.get_log("log_5")
        assert not log_5.fallback_used and "fallback_used" not in json.loads(log_5.payload)
    finally:
        await migrated.close()


async def test_the_overall_row_sums_the_groups_and_takes_percentiles_across_them(store: SqliteStore) -> None:
    records = seeded_mix()
    await store.append_logs(records)
    result = await store.aggregate_logs(query(GroupBy.API_KEY))
    overall = result.overall
    assert overall is not None and overall.group == "" and result.latency_exact
    for field in ("requests", "errors", "fallbacks", "cache_hits", "images", "attempts", "retries"):
        assert getattr(overall.totals, field) == sum(getattr(row.totals, field) for row in result.rows), field
    assert [b.counts.requests for b in overall.buckets] == [
        sum(row.buckets[i].counts.requests for row in result.rows) for i in range(len(result.bucket_starts))
    ]
    everything = expected(records, lambda rec, doc: "")[""]
    lat = sorted(everything["lat"])
    assert (overall.totals.latency_p50_ms, overall.totals.latency_p99_ms) == (
        percentile(lat, 0.5),
        percentile(lat, 0.99),
    )
    # Cost is summed in nano-USD: the total is the exact sum, not a float sum in some order.
    assert overall.totals.cost_usd == sum(round(r.cost_usd * 1e9) for r in records) / 1e9


async def test_both_backends_give_identical_answers(tmp_path: Path, postgres_server: PostgresServer) -> None:
    records = [
        LogRecord(**{**{f: getattr(r, f) for f in r.__slots__}, "id": f"log_{i}_{r.id}"})  # type: ignore[arg-type]
        for i in range(7)
        for r in seeded_mix()
    ]
    url = postgres_server.fresh_database()
    stores = [SqliteStore(tmp_path / "same.db"), PostgresStore(url)]
    try:
        for store in stores:
            await store.open()
            await store.append_logs(records)
        for group_by, key in [(g, "_user" if g == GroupBy.METADATA else "") for g in GroupBy]:
            for filters in ({}, {"caller_key_id": "key-a"}, {"success": False}):
                answers = [await store.aggregate_logs(query(group_by, key, **filters)) for store in stores]
                assert answers[0] == answers[1], (group_by, filters)
    finally:
        for store in stores:
            await store.close()
        postgres_server.drop_database(url)


async def test_postgresql_migration_6_fills_the_columns_of_old_records_and_clears_false_fallbacks(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.fresh_database(migrate=False)
    old = seeded_mix()
    try:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute(
                "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "apply_time BIGINT NOT NULL)"
            )
            for migration in load_migrations("postgresql")[:5]:
                db.execute(migration.sql)  # type: ignore[arg-type]
                db.execute("INSERT INTO schema_migrations VALUES (%s, %s, 0)", (migration.version, migration.name))
            for rec in old:
                payload = json.loads(rec.payload)
                failed_over = rec.status_code != 200 and len({a["target"] for a in payload.get("attempts", [])}) > 1
                if failed_over:
                    payload["fallback_used"] = True
                db.execute(
                    "INSERT INTO request_logs (id, trace_id, create_time, status_code, provider, model, caller_key_id, "
                    "config_id, fallback_used, payload, cost_usd) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        rec.id, rec.trace_id, int(rec.create_time.timestamp() * 1_000_000), rec.status_code,
                        rec.provider, rec.model, rec.caller_key_id, rec.config_id,
                        rec.fallback_used or failed_over, json.dumps(payload), rec.cost_usd,
                    ),
                )  # fmt: skip
        migrated = PostgresStore(url)
        await migrated.open()
        try:
            assert_agrees(
                await migrated.aggregate_logs(query(GroupBy.TARGET)),
                expected(
                    old,
                    lambda rec, doc: (
                        doc.get("served_target") or (doc["attempts"][-1]["target"] if doc.get("attempts") else "")
                    ),
                ),
            )
            log_5 = await migrated.get_log("log_5")
            assert not log_5.fallback_used and "fallback_used" not in json.loads(log_5.payload)
        finally:
            await migrated.close()
    finally:
        postgres_server.drop_database(url)
