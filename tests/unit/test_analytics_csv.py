"""The dashboard's analytics CSV (api/analytics_csv.py): long form, UTC times, chosen columns, the
overall row, and metadata values a spreadsheet would run as formulas defused."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from imagegateway_server.api.analytics_csv import CSV_COLUMNS, analytics_csv, csv_columns
from imagegateway_server.api.analytics_mapping import analytics_response
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.storage.analytics import (
    AnalyticsBuilder,
    AnalyticsQuery,
    GroupBy,
)

START = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def answer() -> str:
    query = AnalyticsQuery(START, START + timedelta(hours=3), timedelta(hours=1), GroupBy.METADATA, "_user")
    builder = AnalyticsBuilder(query)
    zero = dict(fallbacks=0, attempts=1, failed_attempts=0, retries=0, cache_hits=0, images=1)
    builder.add_counts("ann", 0, requests=2, successes=2, cost_nanos=80_000_000, **zero)
    builder.add_counts("=HYPERLINK(1)", 2, requests=1, successes=0, cost_nanos=0, **zero)
    builder.add_latency("ann", 0, 120)
    response = analytics_response(query, builder.result())
    return analytics_csv(response, "metadata._user", ["requests", "errors", "cost_usd", "latency_p50_ms"])


def test_one_line_per_bucket_and_group_with_the_overall_row_last() -> None:
    lines = list(csv.reader(io.StringIO(answer())))
    assert lines[0] == ["bucket_start", "group_by", "group", "requests", "errors", "cost_usd", "latency_p50_ms"]
    assert lines[1:4] == [
        ["2025-03-04T10:00:00Z", "metadata._user", "ann", "2", "0", "0.08", "120"],
        ["2025-03-04T11:00:00Z", "metadata._user", "ann", "0", "0", "0.0", "0"],  # empty: zeros
        ["2025-03-04T12:00:00Z", "metadata._user", "ann", "0", "0", "0.0", "0"],
    ]
    assert lines[6] == ["2025-03-04T12:00:00Z", "metadata._user", "'=HYPERLINK(1)", "1", "1", "0.0", "0"]
    assert [line[1:4] for line in lines[7:]] == [["all", "", "2"], ["all", "", "0"], ["all", "", "1"]]


def test_columns_are_checked_by_name() -> None:
    assert csv_columns("") == list(CSV_COLUMNS)
    assert csv_columns(" requests , cost_usd") == ["requests", "cost_usd"]
    for bad in ("requests,payload", "requests,requests"):
        with pytest.raises(InvalidArgument) as info:
            csv_columns(bad)
        assert info.value.param == "columns"
