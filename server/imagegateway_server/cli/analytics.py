"""``imagegw analytics``: the request log summed over a time range, by group and time bucket.

Prints a table with a text sparkline of requests per bucket, or with ``-o json`` a list of rows
(``group_by``, ``group``, the counts, ``p50_ms``/``p95_ms``/``p99_ms`` and ``buckets``, each with
``start`` and the same counts). The last row is the overall one: every matching request, ``group_by``
``all`` and ``group`` empty, as in the dashboard's CSV; its percentiles span all groups. Everything
goes through ``GetAnalytics`` in the client library.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from imagegateway import AnalyticsFilters, GroupByName, ImageGatewayClient
from imagegateway.types import AnalyticsCounts, AnalyticsRow, ErrorKind, GetAnalyticsResponse
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree
from imagegateway_server.cli.errors import usage_error
from imagegateway_server.domain.durations import parse_duration

# Group-by spellings the command accepts beside the client's names.
_GROUP_ALIASES: dict[str, GroupByName] = {"key": "api_key", "config_id": "config"}
# --filter FIELD=VALUE: the field as written -> (the client's filter name, how the value is read).
_FILTERS: dict[str, tuple[str, Any]] = {
    "provider": ("provider", str),
    "model": ("model", str),
    "config": ("config_id", str),
    "config_id": ("config_id", str),
    "key": ("caller_key_id", str),
    "caller_key_id": ("caller_key_id", str),
    "trace_id": ("trace_id", str),
    "status": ("status_code", int),
    "status_code": ("status_code", int),
    "outcome": ("outcome", str),
    "fallback": ("fallback_used", bool),
    "fallback_used": ("fallback_used", bool),
}
_SPARKS = "▁▂▃▄▅▆▇█"
# The overall row's ``group_by`` in ``-o json`` (the dashboard's CSV names it so too) and its table label.
OVERALL_GROUP_BY = "all"
_OVERALL_LABEL = "(all)"


def duration(text: str) -> timedelta:
    """A positive duration such as 30m, 24h, 7d or 1h30m."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def instant(text: str) -> datetime:
    """An ISO 8601 time; a naive one is UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def group_by(text: str) -> tuple[GroupByName, str]:
    """``provider``, ``model``, ``config``, ``key``, ``target`` or ``metadata.KEY`` -> (group_by, metadata key)."""
    if text.startswith("metadata."):
        key = text.removeprefix("metadata.")
        if not key:
            raise argparse.ArgumentTypeError("metadata.KEY needs a key, e.g. metadata._user")
        return "metadata", key
    name = _GROUP_ALIASES.get(text, text)
    if name not in get_args(GroupByName) or name == "metadata":
        raise argparse.ArgumentTypeError(
            f"not a grouping: {text!r} (provider, model, config, key, target or metadata.KEY)"
        )
    return name, ""  # type: ignore[return-value]  # checked against GroupByName just above


def filter_pair(text: str) -> tuple[str, Any]:
    """``field=value`` -> (the client's filter name, the value read as the field's type)."""
    field, sep, value = text.partition("=")
    if not sep or field not in _FILTERS:
        raise argparse.ArgumentTypeError(f"not FIELD=VALUE with FIELD one of {', '.join(_FILTERS)}: {text!r}")
    name, kind = _FILTERS[field]
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise argparse.ArgumentTypeError(f"{field} takes true or false, not {value!r}")
        return name, value.lower() == "true"
    if kind is int:
        if not value.isdigit():
            raise argparse.ArgumentTypeError(f"{field} takes a number, not {value!r}")
        return name, int(value)
    if name == "outcome" and value not in ("success", "failure"):
        raise argparse.ArgumentTypeError(f"outcome takes success or failure, not {value!r}")
    return name, value


def sparkline(values: list[int]) -> str:
    """One character per bucket, scaled to the row's busiest bucket; an empty bucket is a dot."""
    top = max(values, default=0)
    if top == 0:
        return "·" * len(values)
    return "".join("·" if v == 0 else _SPARKS[min(len(_SPARKS) - 1, (v * len(_SPARKS) - 1) // top)] for v in values)


def _kind_name(kind: int) -> str:
    return ErrorKind.Name(kind).removeprefix("ERROR_KIND_").lower()  # type: ignore[arg-type]


def span(size: timedelta) -> str:
    """A bucket size as people write it: 5m, 1h, 6h, 1d."""
    seconds = int(size.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def _time(when: Any) -> str:
    return str(when.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z"))


def counts_json(counts: AnalyticsCounts) -> dict[str, Any]:
    """The counts of a row or a bucket under the names ``-o json`` promises."""
    return {
        "requests": counts.requests,
        "successes": counts.successes,
        "errors": counts.errors,
        "errors_by_kind": {_kind_name(entry.kind): entry.count for entry in counts.errors_by_kind},
        "fallbacks": counts.fallbacks,
        "fallback_pairs": [
            {"from": pair.from_target, "to": pair.to_target, "count": pair.count} for pair in counts.fallback_pairs
        ],
        "attempts": counts.attempts,
        "failed_attempts": counts.failed_attempts,
        "retries": counts.retries,
        "cache_hits": counts.cache_hits,
        "images": counts.images,
        "cost_usd": counts.cost_usd,
        "p50_ms": counts.latency_p50_ms,
        "p95_ms": counts.latency_p95_ms,
        "p99_ms": counts.latency_p99_ms,
    }


def row_json(row: AnalyticsRow, grouping: str) -> dict[str, Any]:
    """One group of ``grouping`` (``provider``, ``metadata._user``, ``all``): its totals, then its
    buckets (``start`` in RFC 3339 UTC)."""
    return {
        "group_by": grouping,
        "group": row.group,
        **counts_json(row.totals),
        "buckets": [{"start": _time(b.start_time), **counts_json(b.counts)} for b in row.buckets],
    }


def print_analytics(response: GetAnalyticsResponse) -> None:
    """The table: one line per group, totals and a sparkline of requests per bucket."""
    size = response.bucket_duration.ToTimedelta()
    sys.stdout.write(
        f"{_time(response.start_time)} .. {_time(response.end_time)}, "
        f"{len(response.rows[0].buckets) if response.rows else 0} buckets of {span(size)}\n"
    )
    headers = (
        "GROUP",
        "REQUESTS",
        "ERRORS",
        "FALLBACKS",
        "CACHE_HITS",
        "IMAGES",
        "COST_USD",
        "P50_MS",
        "P95_MS",
        "P99_MS",
        "REQUESTS_OVER_TIME",
    )
    shown = [*response.rows, *([response.overall] if response.HasField("overall") else [])]
    labels = [row.group or "-" for row in response.rows] + [_OVERALL_LABEL] * (len(shown) - len(response.rows))
    rows = [
        [
            label,
            str(row.totals.requests),
            str(row.totals.errors),
            str(row.totals.fallbacks),
            str(row.totals.cache_hits),
            str(row.totals.images),
            f"{row.totals.cost_usd:.4f}",
            str(row.totals.latency_p50_ms),
            str(row.totals.latency_p95_ms),
            str(row.totals.latency_p99_ms),
            sparkline([b.counts.requests for b in row.buckets]),
        ]
        for label, row in zip(labels, shown, strict=True)
    ]
    output.print_table(headers, rows, sys.stdout)


def _run(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    if args.end is not None and args.start is None:
        raise usage_error("--to needs --from")
    filters: AnalyticsFilters = dict(args.filter or ())  # type: ignore[assignment]  # names from _FILTERS
    since = args.since if args.since is not None or args.start is not None else timedelta(hours=24)
    name, metadata_key = args.group_by
    response = client.get_analytics(
        since=since,
        start_time=args.start,
        end_time=args.end,
        group_by=name,
        metadata_key=metadata_key,
        **filters,
    )
    if args.output == "json":
        grouping = f"metadata.{metadata_key}" if metadata_key else name
        rows = [row_json(row, grouping) for row in response.rows]
        if response.HasField("overall"):
            rows.append(row_json(response.overall, OVERALL_GROUP_BY))
        output.print_json(rows, sys.stdout)
    else:
        print_analytics(response)
    return 0


def register(commands: CommandTree) -> None:
    sub = commands.command("analytics", "request counts, errors, fallbacks, cost and latency over time", _run)
    window = sub.add_mutually_exclusive_group()
    window.add_argument("--since", type=duration, metavar="DURATION", help="the range ending now (default 24h)")
    window.add_argument(
        "--from", dest="start", type=instant, metavar="TIME", help="the range's start (ISO 8601, naive = UTC)"
    )
    sub.add_argument(
        "--to", dest="end", type=instant, metavar="TIME", help="the range's end, with --from (default now)"
    )
    sub.add_argument(
        "--group-by",
        type=group_by,
        default=("provider", ""),
        metavar="DIMENSION",
        help="provider (default), model, config, key, target or metadata.KEY",
    )
    sub.add_argument(
        "--filter",
        type=filter_pair,
        action="append",
        metavar="FIELD=VALUE",
        help="only matching requests (repeatable): provider, model, config, key, status, outcome, fallback, trace_id",
    )
