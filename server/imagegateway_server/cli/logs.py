"""``imagegw logs``: the gateway's request logs, listed, shown one by one, or followed (``tail``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from imagegateway import ImageGatewayClient
from imagegateway.types import RequestLog
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree, non_negative
from imagegateway_server.cli.follow import follow_logs


def _timestamp(text: str) -> datetime:
    """ISO 8601 (naive = UTC) or a duration ago: 30s, 15m, 2h, 7d."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or a duration like 2h: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _poll_interval(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, not {text}")
    return value


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The ListLogs filters the flags set (``--no-fallback`` is a filter too, hence ``is not None``)."""
    filters: dict[str, Any] = {
        "trace_id": args.trace_id,
        "status_code": args.status,
        "outcome": args.outcome,
        "provider": args.provider,
        "model": args.model,
        "config_id": args.config,
        "fallback_used": args.fallback,
        "caller_key_id": args.caller_key_id,
    }
    return {k: v for k, v in filters.items() if v is not None and v != ""}


def _list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    filters = _filters(args)
    for key, value in (("start_time", args.since), ("end_time", args.until)):
        if value is not None:
            filters[key] = value
    page_size = min(args.limit, 200) if args.limit else 0
    logs: list[RequestLog] = []
    for log in client.iter_logs(page_size=page_size, **filters):
        if args.limit and len(logs) >= args.limit:
            break
        logs.append(log)
    output.emit_list(args.output, logs, RequestLog)
    return 0


def _tail(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    filters = _filters(args)

    def list_since(since: datetime | None, limit: int) -> list[RequestLog]:
        window = {**filters, "start_time": since} if since is not None else filters
        found: list[RequestLog] = []
        for log in client.iter_logs(page_size=min(limit, 200) if limit else 200, **window):
            found.append(log)
            if limit and len(found) >= limit:
                break
        return found

    try:
        for log in follow_logs(list_since, backlog=args.lines, interval=args.interval):
            if args.output == "json":  # one JSON object per line, so a stream can be piped to jq
                sys.stdout.write(json.dumps(output.to_json(log), ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(output.log_line(log) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C is how a tail ends
        return 0
    return 0


def _get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    log = client.get_log(args.id)
    if args.output == "json":
        output.print_json(output.to_json(log), sys.stdout)
    else:
        output.print_log(log, sys.stdout)
    return 0


def _add_filter_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--trace-id", help="only requests with this trace id")
    sub.add_argument("--status", type=int, metavar="CODE", help="HTTP-style status, e.g. 200 or 503")
    sub.add_argument("--outcome", choices=("success", "failure"), help="only successes, or only failures")
    sub.add_argument("--provider", help="the provider that served (or was last tried)")
    sub.add_argument("--model", help="the model that served (or was last tried)")
    sub.add_argument("--config", metavar="ID", help="a saved routing config id")
    sub.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only requests that fell back (--no-fallback: only those that did not)",
    )
    sub.add_argument("--caller-key-id", metavar="ID", help="requests made with this gateway key (admin keys)")


def register(commands: CommandTree) -> None:
    logs = commands.group("logs", "request logs")
    sub = logs.command("list", "list request logs, newest first", _list)
    _add_filter_flags(sub)
    sub.add_argument(
        "--since",
        "--start-time",
        dest="since",
        type=_timestamp,
        metavar="TIME",
        help="ISO 8601 (naive = UTC) or a duration ago (30m, 2h, 7d)",
    )
    sub.add_argument(
        "--until",
        "--end-time",
        dest="until",
        type=_timestamp,
        metavar="TIME",
        help="only requests before this time, written as for --since",
    )
    sub.add_argument("--limit", type=int, default=50, help="at most this many records (0: all; default 50)")
    logs.command("get", "show one request log with every attempt", _get).add_argument(
        "id", help="the log's id (a response's log_id)"
    )
    sub = logs.command("tail", "print request logs as they are written, until Ctrl-C", _tail)
    _add_filter_flags(sub)
    sub.add_argument(
        "-n", "--lines", type=non_negative, default=10, help="start with this many recent records (default 10)"
    )
    sub.add_argument(
        "--interval",
        type=_poll_interval,
        default=1.0,
        metavar="SECONDS",
        help="how often to poll for new records (default 1)",
    )
