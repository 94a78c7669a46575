"""GetAnalytics as CSV for the dashboard's downloads: long form, one line per bucket and group.

Columns: ``bucket_start`` (RFC 3339, UTC), ``group_by`` (``provider``, ``metadata._user``, ...;
``all`` on the lines of the overall row, whose ``group`` is empty), ``group``, then the counts a
chart asked for, in its order. Every bucket is a line, empty ones with zeros. Costs are written as
the shortest decimal that reads back as the same double; the rest are integers. A group that a
spreadsheet would run as a formula (a metadata value starting with = + - @) is written with a
leading apostrophe, as OWASP advises for CSV files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from imagegateway.v1 import analytics_pb2
from imagegateway_server.domain.errors import InvalidArgument

# The counts a CSV can carry: AnalyticsCounts' plain fields.
CSV_COLUMNS = (
    "requests",
    "successes",
    "errors",
    "fallbacks",
    "attempts",
    "failed_attempts",
    "retries",
    "cache_hits",
    "images",
    "cost_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
)
OVERALL_GROUP_BY = "all"


def csv_columns(text: str) -> list[str]:
    """The ``columns`` parameter (comma-separated; empty: all of them), checked by name."""
    names = [name.strip() for name in text.split(",") if name.strip()] or list(CSV_COLUMNS)
    for name in names:
        if name not in CSV_COLUMNS:
            raise InvalidArgument(
                f"unknown column {name!r}; expected some of: {', '.join(CSV_COLUMNS)}", param="columns"
            )
    if len(set(names)) != len(names):
        raise InvalidArgument("names a column twice", param="columns")
    return names


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _group_text(group: str) -> str:
    return "'" + group if group.startswith(_FORMULA_STARTS) else group


def _cell(counts: analytics_pb2.AnalyticsCounts, column: str) -> str:
    value = getattr(counts, column)
    return repr(float(value)) if column == "cost_usd" else str(int(value))


def analytics_csv(response: analytics_pb2.GetAnalyticsResponse, group_by: str, columns: Sequence[str]) -> str:
    """The CSV text; ``group_by`` names the grouping as the dashboard wrote it (``metadata._user``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["bucket_start", "group_by", "group", *columns])
    lines = [(group_by, row) for row in response.rows]
    if response.HasField("overall"):
        lines.append((OVERALL_GROUP_BY, response.overall))
    for name, row in lines:
        for bucket in row.buckets:
            start = bucket.start_time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow(
                [start, name, _group_text(row.group), *(_cell(bucket.counts, column) for column in columns)]
            )
    return out.getvalue()
