"""``imagegw analytics`` without a gateway: its argument types, the sparkline, and the request the
client builds from them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from imagegateway.builders import analytics_request
from imagegateway.types import AnalyticsGroupBy
from imagegateway.v1 import analytics_pb2, images_pb2
from imagegateway_server.cli.analytics import (
    OVERALL_GROUP_BY,
    duration,
    filter_pair,
    group_by,
    instant,
    row_json,
    span,
    sparkline,
)


def test_durations() -> None:
    assert duration("30m") == timedelta(minutes=30)
    assert duration("24h") == timedelta(hours=24)
    assert duration("7d") == timedelta(days=7)
    assert duration("1h30m") == timedelta(minutes=90)
    for bad in ("0h", "-1h", "h", "2 days", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            duration(bad)


def test_instants_are_utc_when_naive() -> None:
    assert instant("2025-03-01") == datetime(2025, 3, 1, tzinfo=UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        instant("yesterday")


def test_group_by_names_and_metadata_keys() -> None:
    assert group_by("provider") == ("provider", "")
    assert group_by("key") == ("api_key", "")
    assert group_by("metadata._user") == ("metadata", "_user")
    for bad in ("metadata.", "metadata", "team"):
        with pytest.raises(argparse.ArgumentTypeError):
            group_by(bad)


def test_filters_are_typed() -> None:
    assert filter_pair("provider=openai") == ("provider", "openai")
    assert filter_pair("key=k1") == ("caller_key_id", "k1")
    assert filter_pair("status=503") == ("status_code", 503)
    assert filter_pair("fallback=true") == ("fallback_used", True)
    for bad in ("provider", "color=red", "status=x", "fallback=maybe", "outcome=meh"):
        with pytest.raises(argparse.ArgumentTypeError):
            filter_pair(bad)


def test_sparkline_scales_to_the_busiest_bucket_and_dots_empty_ones() -> None:
    assert sparkline([0, 1, 4, 8]) == "·▁▄█"
    assert sparkline([0, 0]) == "··"
    assert span(timedelta(hours=6)) == "6h" and span(timedelta(minutes=5)) == "5m" and span(timedelta(days=1)) == "1d"


def test_the_client_builds_the_range_grouping_and_filters() -> None:
    request = analytics_request(timedelta(hours=24), None, None, "metadata", "_user", {"provider": "openai"})
    assert request.since.ToTimedelta() == timedelta(hours=24) and not request.HasField("start_time")
    assert (request.group_by, request.metadata_key, request.provider) == (
        AnalyticsGroupBy.Value("ANALYTICS_GROUP_BY_METADATA"),
        "_user",
        "openai",
    )
    window = analytics_request(None, datetime(2025, 3, 1), datetime(2025, 3, 2), "model", "", {"fallback_used": False})
    assert window.start_time.ToDatetime() == datetime(2025, 3, 1) and window.HasField("fallback_used")
    with pytest.raises(ValueError, match="either since or start_time"):
        analytics_request(None, None, None, "model", "", {})
    with pytest.raises(ValueError, match="group_by"):
        analytics_request(timedelta(hours=1), None, None, "color", "", {})  # type: ignore[arg-type]


def test_json_rows_carry_the_issues_field_names_and_their_grouping() -> None:
    row = analytics_pb2.AnalyticsRow(group="")
    row.totals.requests, row.totals.errors, row.totals.cost_usd, row.totals.latency_p95_ms = 3, 1, 0.08, 250
    row.totals.errors_by_kind.add(kind=images_pb2.ERROR_KIND_TIMEOUT, count=1)
    row.totals.fallback_pairs.add(from_target="targets[0]", to_target="targets[1]", count=1)
    bucket = row.buckets.add()
    bucket.start_time.FromDatetime(datetime(2025, 3, 4, 10, 0, tzinfo=UTC))
    bucket.counts.requests = 3
    shown = row_json(row, OVERALL_GROUP_BY)
    assert (shown["group_by"], shown["group"], shown["requests"], shown["errors"]) == ("all", "", 3, 1)
    assert (shown["cost_usd"], shown["p95_ms"], shown["errors_by_kind"]) == (0.08, 250, {"timeout": 1})
    assert shown["fallback_pairs"] == [{"from": "targets[0]", "to": "targets[1]", "count": 1}]
    assert {"fallbacks", "cache_hits", "images", "p50_ms", "p99_ms"} <= set(shown)
    assert shown["buckets"][0]["start"] == "2025-03-04T10:00:00Z" and shown["buckets"][0]["requests"] == 3
