"""Turns the dashboard's query strings (the log list, analytics) into typed store queries, refusing
bad input by field name.

Parameter names are ListLogs' and GetAnalytics' field names. A ``generate`` key is always limited to
its own requests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from imagegateway_server.api.analytics_mapping import analytics_range, grouped_query
from imagegateway_server.api.auth import visible_caller_key_id
from imagegateway_server.domain.calls import Caller
from imagegateway_server.domain.durations import parse_duration
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.storage.analytics import AnalyticsQuery, GroupBy
from imagegateway_server.storage.records import LogFilter

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_MAX_TEXT = 200
_MAX_TOKEN = 2000

PARAMS = frozenset(
    {
        "trace_id",
        "outcome",
        "status_code",
        "provider",
        "model",
        "config_id",
        "fallback_used",
        "start_time",
        "end_time",
        "caller_key_id",
        "page_size",
        "page_token",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class LogQuery:
    """One page request: the store's filter and where to resume."""

    store_filter: LogFilter
    page_size: int = DEFAULT_PAGE_SIZE
    page_token: str = ""


def _text(name: str, value: str, limit: int = _MAX_TEXT) -> str | None:
    value = value.strip()
    if len(value) > limit:
        raise InvalidArgument(f"must be at most {limit} characters", param=name)
    return value or None


def _int(name: str, value: str, low: int, high: int) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or not low <= int(value) <= high:
        raise InvalidArgument(f"must be a whole number from {low} to {high}", param=name)
    return int(value)


def _choice(name: str, value: str, choices: dict[str, bool]) -> bool | None:
    value = value.strip().lower()
    if not value:
        return None
    if value not in choices:
        raise InvalidArgument(f"must be one of: {', '.join(choices)}", param=name)
    return choices[value]


def _time(name: str, value: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value) if len(value) <= 64 else None
    except ValueError:
        when = None
    if when is None:
        raise InvalidArgument("must be an ISO 8601 time, for example 2025-01-31T12:00:00Z", param=name)
    if when.tzinfo is None:
        raise InvalidArgument("must include a time zone (Z or +HH:MM)", param=name)
    return when


def parse_log_query(params: Iterable[tuple[str, str]], caller: Caller) -> LogQuery:
    """The query for these query-string pairs; InvalidArgument names the first bad parameter."""
    raw: dict[str, str] = {}
    for name, value in params:
        if name not in PARAMS:
            raise InvalidArgument(f"unknown parameter; expected one of: {', '.join(sorted(PARAMS))}", param=name)
        if name in raw:
            raise InvalidArgument("must be given at most once", param=name)
        raw[name] = value
    get = raw.get
    provider = _text("provider", get("provider", ""))
    start_time = _time("start_time", get("start_time", ""))
    end_time = _time("end_time", get("end_time", ""))
    if start_time and end_time and end_time <= start_time:
        raise InvalidArgument("must be later than start_time", param="end_time")
    caller_key_id = visible_caller_key_id(caller, _text("caller_key_id", get("caller_key_id", "")))
    store_filter = LogFilter(
        trace_id=_text("trace_id", get("trace_id", "")),
        status_code=_int("status_code", get("status_code", ""), 100, 599),
        success=_choice("outcome", get("outcome", ""), {"success": True, "failure": False}),
        provider=canonical_provider(provider) if provider else None,
        caller_key_id=caller_key_id,
        start_time=start_time,
        end_time=end_time,
        model=_text("model", get("model", "")),
        config_id=_text("config_id", get("config_id", "")),
        fallback_used=_choice("fallback_used", get("fallback_used", ""), {"true": True, "false": False}),
    )
    return LogQuery(
        store_filter=store_filter,
        page_size=_int("page_size", get("page_size", ""), 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE,
        page_token=_text("page_token", get("page_token", ""), _MAX_TOKEN) or "",
    )


# GetAnalytics' own parameters; the rest are the log list's filters (its paging aside).
ANALYTICS_PARAMS = frozenset({"since", "group_by"})
_PAGING = frozenset({"page_size", "page_token"})


def parse_analytics_query(
    params: Iterable[tuple[str, str]], caller: Caller, now: datetime | None = None
) -> AnalyticsQuery:
    """The analytics query: ``since`` (24h, 7d) or ``start_time``/``end_time``, ``group_by``
    (provider, model, config, api_key, target or metadata.KEY; default provider) and the log
    list's filters. InvalidArgument names the first bad parameter."""
    own: dict[str, str] = {}
    filters: list[tuple[str, str]] = []
    for name, value in params:
        if name in _PAGING:
            raise InvalidArgument("analytics are not paged", param=name)
        if name in ANALYTICS_PARAMS:
            if name in own:
                raise InvalidArgument("must be given at most once", param=name)
            own[name] = value
        else:
            filters.append((name, value))
    log_filter = parse_log_query(filters, caller).store_filter
    since = None
    if own.get("since", "").strip():
        try:
            since = parse_duration(own["since"])
        except ValueError as exc:
            raise InvalidArgument(str(exc), param="since") from None
    start, end = analytics_range(since, log_filter.start_time, log_filter.end_time, now or datetime.now(UTC))
    group_text = own.get("group_by", "").strip() or GroupBy.PROVIDER.value
    metadata_key = ""
    if group_text.startswith("metadata."):
        group_text, metadata_key = GroupBy.METADATA.value, group_text.removeprefix("metadata.")
    if group_text == GroupBy.METADATA.value and not metadata_key:
        raise InvalidArgument("write metadata.KEY, for example metadata._user", param="group_by")
    try:
        group_by = GroupBy(group_text)
    except ValueError:
        names = ", ".join(g.value for g in GroupBy if g != GroupBy.METADATA)
        raise InvalidArgument(f"must be one of {names} or metadata.KEY", param="group_by") from None
    return grouped_query(start, end, group_by, metadata_key, log_filter)


def totals_query(query: AnalyticsQuery) -> AnalyticsQuery:
    """The query in buckets of whole days covering its range (one or two), for answers whose buckets
    are dropped (the dashboard's top tables): the totals are the same, and the store reads day cells."""
    days = -(-(query.end - query.start) // timedelta(days=1))
    return dataclasses.replace(query, bucket_size=timedelta(days=days))


# The view's top tables beside its chart: (answer name, grouping, metadata key).
VIEW_TABLES = (
    ("keys", GroupBy.API_KEY, ""),
    ("users", GroupBy.METADATA, "_user"),
    ("targets", GroupBy.TARGET, ""),
)


def table_query(query: AnalyticsQuery, group_by: GroupBy, metadata_key: str = "") -> AnalyticsQuery:
    """A top table's query: the chart's range and filter grouped another way, totals only
    (``totals_query``) and without latencies, which the tables do not show."""
    regrouped = dataclasses.replace(query, group_by=group_by, metadata_key=metadata_key, latencies=False)
    return totals_query(regrouped)
