"""The dashboard's analytics JSON (api/analytics_json.py) is protobuf's JSON form of GetAnalytics, to
the field; answers read together (Store.aggregate_logs_together) are the answers read one by one;
a query without latencies counts the same and leaves the percentiles 0; the view's table queries."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from google.protobuf import json_format

from imagegateway_server.api.analytics_json import analytics_json
from imagegateway_server.api.analytics_mapping import analytics_response
from imagegateway_server.api.dashboard_query import VIEW_TABLES, table_query, totals_query
from imagegateway_server.storage.analytics import AnalyticsCounts, AnalyticsQuery, AnalyticsResult, GroupBy
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import LogFilter
from imagegateway_server.storage.sqlite import SqliteStore
from tests.unit.test_analytics_rollup import GROUPINGS, day_query
from tests.unit.test_storage_analytics import T0, attempt, record, seeded_mix

LATENCIES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")


def protobuf_json(query: AnalyticsQuery, result: AnalyticsResult) -> dict[str, object]:
    return json_format.MessageToDict(
        analytics_response(query, result),
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        unquote_int64_if_possible=True,
    )


def without_counts_latencies(counts: AnalyticsCounts) -> AnalyticsCounts:
    return dataclasses.replace(counts, latency_p50_ms=0, latency_p95_ms=0, latency_p99_ms=0)


async def test_the_json_is_protobufs_json_of_the_response_for_every_grouping(tmp_path: object) -> None:
    store = SqliteStore(f"{tmp_path}/json.db", rollup_interval=0)
    await store.open()
    try:
        records = seeded_mix()
        # A failure of a kind this gateway does not know counts under UNSPECIFIED, as the proto names it.
        records.append(
            record(99, 3, attempts=[attempt("targets[0]", "openai", error_kind="ERROR_KIND_FROM_THE_FUTURE")],
                   served=False, error_kind="ERROR_KIND_FROM_THE_FUTURE")
        )  # fmt: skip
        await store.append_logs(records)
        await store.roll_up_logs()  # the day query reads cells: histogram percentiles, latency_exact False
        for group_by, metadata_key, _ in GROUPINGS:
            for query in (day_query(group_by, metadata_key), totals_query(day_query(group_by, metadata_key))):
                result = await store.aggregate_logs(query)
                assert analytics_json(query, result) == protobuf_json(query, result), (group_by, query.bucket_size)
        short = AnalyticsQuery(T0, T0 + timedelta(minutes=30), timedelta(seconds=90), GroupBy.PROVIDER)
        result = await store.aggregate_logs(short)
        assert result.latency_exact and any(row.totals.errors_by_kind for row in result.rows)
        assert analytics_json(short, result) == protobuf_json(short, result)
        bare = analytics_json(short, result, buckets=False, latencies=False)
        rows = [*bare["rows"], bare["overall"]]
        assert all(row["buckets"] == [] and not set(LATENCIES) & set(row["totals"]) for row in rows)
    finally:
        await store.close()


async def test_answers_read_together_are_the_answers_read_alone(any_store: Store) -> None:
    await any_store.append_logs(seeded_mix())
    await any_store.roll_up_logs()
    queries = [day_query(group_by, metadata_key) for group_by, metadata_key, _ in GROUPINGS]
    queries.append(day_query(GroupBy.METADATA, "_user", caller_key_id="key-a"))
    together = await any_store.aggregate_logs_together(queries)
    assert together == [await any_store.aggregate_logs(query) for query in queries]
    assert await any_store.aggregate_logs_together([]) == []


async def test_a_query_without_latencies_counts_the_same_with_zero_percentiles(any_store: Store) -> None:
    await any_store.append_logs(seeded_mix())
    await any_store.roll_up_logs()
    for group_by, metadata_key, _ in GROUPINGS:
        for query in (day_query(group_by, metadata_key), totals_query(day_query(group_by, metadata_key))):
            full = await any_store.aggregate_logs(query)
            bare = await any_store.aggregate_logs(dataclasses.replace(query, latencies=False))
            assert full.overall is not None and full.overall.totals.latency_p99_ms > 0
            assert [(row.group, without_counts_latencies(row.totals)) for row in full.rows] == [
                (row.group, row.totals) for row in bare.rows
            ]
            assert bare.overall is not None
            assert bare.overall.totals == without_counts_latencies(full.overall.totals)


def test_the_views_tables_regroup_the_charts_query_as_totals_without_latencies() -> None:
    chart = AnalyticsQuery(
        T0, T0 + timedelta(days=30), timedelta(days=1), GroupBy.MODEL, log_filter=LogFilter(caller_key_id="key-a")
    )
    queries = {name: table_query(chart, group_by, key) for name, group_by, key in VIEW_TABLES}
    assert [(q.group_by, q.metadata_key) for q in queries.values()] == [
        (GroupBy.API_KEY, ""),
        (GroupBy.METADATA, "_user"),
        (GroupBy.TARGET, ""),
    ]
    for query in queries.values():
        # The same instants and filter (a generate key's tables are its own), one or two day-sized buckets.
        assert (query.start, query.end, query.log_filter) == (chart.start, chart.end, chart.log_filter)
        assert query.bucket_size == timedelta(days=30) and not query.latencies
