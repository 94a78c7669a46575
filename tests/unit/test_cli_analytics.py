"""``imagegw analytics`` without a gateway: its argument types, the sparkline, and the request the
client builds from them."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from imagegateway.builders import analytics_request
from imagegateway.types import AnalyticsGroupBy
from imagegateway_server.cli.analytics import duration, filter_pair, group_by, instant, span, sparkline


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
