"""GetAnalytics as the dashboard's JSON, built straight from the store's ``AnalyticsResult``.

The dict is what ``json_format.MessageToDict(analytics_response(query, result),
preserving_proto_field_name=True, always_print_fields_with_no_presence=True,
unquote_int64_if_possible=True)`` gives (a test holds the two equal), without building the message
first: protobuf's JSON printer walks every field of every bucket of every group, which for a month
by 200 users is most of an answer's time. ``latencies=False`` leaves the percentiles out (the
dashboard's top tables, whose queries read none; see ``AnalyticsQuery.latencies``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from imagegateway.v1 import analytics_pb2, images_pb2
from imagegateway_server.api.analytics_mapping import group_by_proto
from imagegateway_server.storage.analytics import AnalyticsCounts, AnalyticsQuery, AnalyticsResult, AnalyticsRow

JsonDict = dict[str, Any]

# The ErrorKind names the API knows; a kind a newer gateway wrote is counted under UNSPECIFIED, as
# analytics_mapping does.
_KNOWN_KINDS = frozenset(images_pb2.ErrorKind.keys())
_UNSPECIFIED_KIND = images_pb2.ErrorKind.Name(images_pb2.ERROR_KIND_UNSPECIFIED)


def _timestamp(when: datetime) -> str:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(when)
    return stamp.ToJsonString()


def _counts(counts: AnalyticsCounts, latencies: bool) -> JsonDict:
    shown: JsonDict = {
        "requests": counts.requests,
        "successes": counts.successes,
        "errors": counts.errors,
        "errors_by_kind": [
            {"kind": name if name in _KNOWN_KINDS else _UNSPECIFIED_KIND, "count": count}
            for name, count in counts.errors_by_kind.items()
        ],
        "fallbacks": counts.fallbacks,
        "fallback_pairs": [
            {"from_target": pair[0], "to_target": pair[1], "count": count}
            for pair, count in counts.fallback_pairs.items()
        ],
        "attempts": counts.attempts,
        "failed_attempts": counts.failed_attempts,
        "retries": counts.retries,
        "cache_hits": counts.cache_hits,
        "images": counts.images,
        "cost_usd": counts.cost_usd,
    }
    if latencies:
        shown["latency_p50_ms"] = counts.latency_p50_ms
        shown["latency_p95_ms"] = counts.latency_p95_ms
        shown["latency_p99_ms"] = counts.latency_p99_ms
    return shown


def _row(row: AnalyticsRow, bucket_starts: list[str] | None, latencies: bool) -> JsonDict:
    shown: JsonDict = {"group": row.group, "totals": _counts(row.totals, latencies), "buckets": []}
    if bucket_starts is not None:
        shown["buckets"] = [
            {"start_time": start, "counts": _counts(bucket.counts, latencies)}
            for start, bucket in zip(bucket_starts, row.buckets, strict=True)
        ]
    return shown


def analytics_json(
    query: AnalyticsQuery, result: AnalyticsResult, *, buckets: bool = True, latencies: bool = True
) -> JsonDict:
    """The answer to ``query`` as JSON; without ``buckets`` every row's bucket list is empty."""
    duration = duration_pb2.Duration()
    duration.FromTimedelta(query.bucket_size)
    # Every row shares the bucket starts: formatted once, not once per row.
    starts = [_timestamp(start) for start in result.bucket_starts] if buckets else None
    shown: JsonDict = {
        "start_time": _timestamp(query.start),
        "end_time": _timestamp(query.end),
        "bucket_duration": duration.ToJsonString(),
        "group_by": analytics_pb2.AnalyticsGroupBy.Name(group_by_proto(query.group_by)),
        "metadata_key": query.metadata_key,
        "rows": [_row(row, starts, latencies) for row in result.rows],
        "latency_exact": result.latency_exact,
    }
    if result.overall is not None:
        shown["overall"] = _row(result.overall, starts, latencies)
    return shown
