"""GetAnalytics on the wire: the request checked and turned into the store's ``AnalyticsQuery``, and
the store's ``AnalyticsResult`` turned into the response message. Every refusal is INVALID_ARGUMENT
naming the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from imagegateway.v1 import analytics_pb2, images_pb2, logs_pb2
from imagegateway_server.api import grpc_mapping
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.storage.analytics import (
    METADATA_KEY_PATTERN,
    AnalyticsCounts,
    AnalyticsQuery,
    AnalyticsResult,
    AnalyticsRow,
    GroupBy,
    bucket_size_for,
)
from imagegateway_server.storage.records import LogFilter

# The longest range one call may aggregate (exact percentiles read every record in it).
MAX_RANGE = timedelta(days=400)

_GROUP_BY: dict[analytics_pb2.AnalyticsGroupBy.ValueType, GroupBy] = {
    analytics_pb2.ANALYTICS_GROUP_BY_UNSPECIFIED: GroupBy.PROVIDER,
    analytics_pb2.ANALYTICS_GROUP_BY_PROVIDER: GroupBy.PROVIDER,
    analytics_pb2.ANALYTICS_GROUP_BY_MODEL: GroupBy.MODEL,
    analytics_pb2.ANALYTICS_GROUP_BY_CONFIG: GroupBy.CONFIG,
    analytics_pb2.ANALYTICS_GROUP_BY_API_KEY: GroupBy.API_KEY,
    analytics_pb2.ANALYTICS_GROUP_BY_TARGET: GroupBy.TARGET,
    analytics_pb2.ANALYTICS_GROUP_BY_METADATA: GroupBy.METADATA,
}
_GROUP_BY_PROTO = {group: value for value, group in _GROUP_BY.items() if value}
_OUTCOMES = {logs_pb2.REQUEST_OUTCOME_SUCCESS: True, logs_pb2.REQUEST_OUTCOME_FAILURE: False}


def group_by_proto(group_by: GroupBy) -> analytics_pb2.AnalyticsGroupBy.ValueType:
    """The wire value of a grouping."""
    return _GROUP_BY_PROTO[group_by]


def analytics_range(
    since: timedelta | None, start: datetime | None, end: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """The range ``[start, end)``: ``since`` ending now, or from ``start`` to ``end`` (default now)."""
    if since is not None:
        if start is not None or end is not None:
            raise InvalidArgument("set either since or start_time/end_time, not both", param="since")
        if since <= timedelta(0):
            raise InvalidArgument("must be a positive duration", param="since")
        if since > MAX_RANGE:
            raise InvalidArgument(f"must be at most {MAX_RANGE.days} days", param="since")
        return now - since, now
    if start is None:
        raise InvalidArgument("set since, or start_time (and optionally end_time)", param="since")
    end = end or now
    if end <= start:
        raise InvalidArgument("must be after start_time", param="end_time")
    if end - start > MAX_RANGE:
        raise InvalidArgument(f"the range must be at most {MAX_RANGE.days} days", param="start_time")
    return start, end


def grouped_query(
    start: datetime, end: datetime, group_by: GroupBy, metadata_key: str, log_filter: LogFilter
) -> AnalyticsQuery:
    """The store query over ``[start, end)``, its metadata key checked (INVALID_ARGUMENT ``metadata_key``)."""
    if group_by == GroupBy.METADATA and not METADATA_KEY_PATTERN.fullmatch(metadata_key):
        raise InvalidArgument(
            "must be 1-64 letters, digits, _ . : or -, starting with a letter, digit or _", param="metadata_key"
        )
    if group_by != GroupBy.METADATA and metadata_key:
        raise InvalidArgument("is only used when grouping by metadata", param="metadata_key")
    return AnalyticsQuery(
        start=start,
        end=end,
        bucket_size=bucket_size_for(start, end),
        group_by=group_by,
        metadata_key=metadata_key,
        log_filter=log_filter,
    )


def analytics_query(
    request: analytics_pb2.GetAnalyticsRequest, caller_key_id: str | None, now: datetime | None = None
) -> AnalyticsQuery:
    """The store query of a request; ``caller_key_id`` is the key whose requests the caller may see
    (None: every key's), from ``auth.visible_caller_key_id``."""
    start, end = analytics_range(
        request.since.ToTimedelta() if request.HasField("since") else None,
        grpc_mapping.time_filter(request, "start_time"),
        grpc_mapping.time_filter(request, "end_time"),
        now or datetime.now(UTC),
    )
    group_by = _GROUP_BY.get(request.group_by)
    if group_by is None:
        raise InvalidArgument(f"unknown value {request.group_by}", param="group_by")
    if request.outcome not in (logs_pb2.REQUEST_OUTCOME_UNSPECIFIED, *_OUTCOMES):
        raise InvalidArgument(f"unknown value {request.outcome}", param="outcome")
    log_filter = LogFilter(
        trace_id=request.trace_id or None,
        status_code=request.status_code or None,
        success=_OUTCOMES.get(request.outcome),
        provider=canonical_provider(request.provider) if request.provider else None,
        caller_key_id=caller_key_id,
        model=request.model or None,
        config_id=request.config_id or None,
        fallback_used=request.fallback_used if request.HasField("fallback_used") else None,
    )
    return grouped_query(start, end, group_by, request.metadata_key, log_filter)


def _error_kind(name: str) -> images_pb2.ErrorKind.ValueType:
    try:
        return images_pb2.ErrorKind.Value(name)
    except ValueError:  # a kind a newer gateway wrote; counted, if not named
        return images_pb2.ERROR_KIND_UNSPECIFIED


def counts_proto(counts: AnalyticsCounts) -> analytics_pb2.AnalyticsCounts:
    """One group's numbers over a bucket or the range."""
    return analytics_pb2.AnalyticsCounts(
        requests=counts.requests,
        successes=counts.successes,
        errors=counts.errors,
        errors_by_kind=[
            analytics_pb2.ErrorKindCount(kind=_error_kind(name), count=count)
            for name, count in counts.errors_by_kind.items()
        ],
        fallbacks=counts.fallbacks,
        fallback_pairs=[
            analytics_pb2.FallbackPair(from_target=pair[0], to_target=pair[1], count=count)
            for pair, count in counts.fallback_pairs.items()
        ],
        attempts=counts.attempts,
        failed_attempts=counts.failed_attempts,
        retries=counts.retries,
        cache_hits=counts.cache_hits,
        images=counts.images,
        cost_usd=counts.cost_usd,
        latency_p50_ms=counts.latency_p50_ms,
        latency_p95_ms=counts.latency_p95_ms,
        latency_p99_ms=counts.latency_p99_ms,
    )


def analytics_response(query: AnalyticsQuery, result: AnalyticsResult) -> analytics_pb2.GetAnalyticsResponse:
    """The response to the request ``query`` came from."""
    response = analytics_pb2.GetAnalyticsResponse(
        group_by=group_by_proto(query.group_by), metadata_key=query.metadata_key, latency_exact=result.latency_exact
    )
    response.start_time.FromDatetime(query.start)
    response.end_time.FromDatetime(query.end)
    response.bucket_duration.FromTimedelta(query.bucket_size)
    for row in result.rows:
        _fill_row(response.rows.add(), row)
    if result.overall is not None:
        _fill_row(response.overall, result.overall)
    return response


def _fill_row(message: analytics_pb2.AnalyticsRow, row: AnalyticsRow) -> None:
    message.group = row.group
    message.totals.CopyFrom(counts_proto(row.totals))
    for bucket in row.buckets:
        entry = message.buckets.add(counts=counts_proto(bucket.counts))
        entry.start_time.FromDatetime(bucket.start)
