"""How ``imagegw`` prints what the gateway returns: proto JSON for ``-o json``, aligned text for people.

JSON output is the resource itself in protobuf's JSON mapping with snake_case names, every field
present (so ``jq .fallback_used`` is ``false``, not ``null``); a saved config's routing JSON is
printed as written (no empty defaults), so it can be fed back to ``configs update``.
The text views shorten enum names (``SCOPE_ADMIN`` -> ``admin``) and timestamps.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC
from pathlib import Path
from typing import IO, Any

from google.protobuf import json_format, timestamp_pb2
from google.protobuf.message import Message

from imagegateway.types import (
    ApiKey,
    Attempt,
    Config,
    ErrorKind,
    GenerateImageFailure,
    Image,
    RequestLog,
    RoutingOutcome,
    TargetHealth,
    VirtualKey,
)

# Columns of list tables: header -> field name, per resource type.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    Config.DESCRIPTOR.full_name: (
        ("ID", "id"),
        ("NAME", "name"),
        ("VERSION", "version"),
        ("CREATED", "create_time"),
    ),
    VirtualKey.DESCRIPTOR.full_name: (
        ("ID", "id"),
        ("NAME", "name"),
        ("PROVIDER", "provider"),
        ("BASE_URL", "base_url"),
        ("CREATED", "create_time"),
        ("ROTATED", "rotate_time"),
    ),
    ApiKey.DESCRIPTOR.full_name: (
        ("ID", "id"),
        ("NAME", "name"),
        ("SCOPE", "scope"),
        ("PREFIX", "display_prefix"),
        ("CREATED", "create_time"),
        ("REVOKED", "revoke_time"),
    ),
    RequestLog.DESCRIPTOR.full_name: (
        ("TIME", "create_time"),
        ("ID", "id"),
        ("STATUS", "status_code"),
        ("PROVIDER", "provider"),
        ("MODEL", "model"),
        ("TARGET", "served_target"),
        ("FALLBACK", "fallback_used"),
        ("LATENCY_MS", "latency_ms"),
        ("COST_USD", "cost_usd"),
        ("TRACE_ID", "trace_id"),
    ),
    TargetHealth.DESCRIPTOR.full_name: (
        ("PROVIDER", "provider"),
        ("HOST", "host"),  # "-": the provider's public API host
        ("MODEL", "model"),
        ("KEY", "key_fingerprint"),
        ("STATE", "state"),
        ("FAILURES", "consecutive_failures"),
        ("FAILURE_RATE", "failure_rate"),
        ("CALLS", "window_calls"),
        ("OPENED", "opened_time"),
        ("NEXT_PROBE", "next_probe_time"),
    ),
}
_EMPTY = "-"


def to_json(msg: Message) -> dict[str, Any]:
    """The resource in proto JSON (snake_case, every field present)."""
    data = json_format.MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    if isinstance(msg, Config) and msg.HasField("config"):
        data["config"] = json_format.MessageToDict(msg.config, preserving_proto_field_name=True)
    return data


def print_json(value: object, out: IO[str]) -> None:
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def emit(output: str, msg: Message, extra: dict[str, Any] | None = None) -> None:
    """Prints one resource on stdout: proto JSON (plus ``extra`` fields) or ``field: value`` lines."""
    if output == "json":
        print_json({**to_json(msg), **(extra or {})}, sys.stdout)
    else:
        print_fields([*resource_rows(msg), *(extra or {}).items()], sys.stdout)


def emit_list(output: str, msgs: Sequence[Message], kind: type[Message]) -> None:
    """Prints resources of one type on stdout: a JSON list or a table."""
    if output == "json":
        print_json([to_json(m) for m in msgs], sys.stdout)
    else:
        print_resources(msgs, kind, sys.stdout)


def emit_deleted(output: str, what: str, id: str) -> None:
    """Says on stdout that a resource is gone (``{}`` in JSON: a delete returns nothing)."""
    if output == "json":
        print_json({}, sys.stdout)
    else:
        sys.stdout.write(f"deleted {what} {id}\n")


def _enum_prefix(type_name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type_name).upper() + "_"  # ErrorKind -> ERROR_KIND_


def _human(msg: Message, name: str) -> str:
    """One field as short text: enums shortened, times to the second, nested values as JSON."""
    field = msg.DESCRIPTOR.fields_by_name[name]
    value = getattr(msg, field.name)
    if field.is_repeated:
        if not len(value):
            return _EMPTY
        if field.message_type is None:
            return ", ".join(str(v) for v in value)
        return json.dumps(json_format.MessageToDict(msg, preserving_proto_field_name=True)[field.name])
    if field.message_type is not None:
        if not msg.HasField(field.name):
            return _EMPTY
        if isinstance(value, timestamp_pb2.Timestamp):
            return value.ToDatetime(tzinfo=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return json.dumps(json_format.MessageToDict(value, preserving_proto_field_name=True), indent=2)
    if field.enum_type is not None:
        name = field.enum_type.values_by_number[value].name.removeprefix(_enum_prefix(field.enum_type.name))
        return _EMPTY if name == "UNSPECIFIED" else name.lower()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value != "" else _EMPTY


def print_fields(rows: Iterable[tuple[str, str]], out: IO[str]) -> None:
    """``name: value`` lines, values aligned; multi-line values are indented under their name."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0) + 2
    for name, value in rows:
        lines = value.splitlines() or [""]
        out.write(f"{name + ':':<{width}}{lines[0]}\n")
        for line in lines[1:]:
            out.write(" " * width + line + "\n")


def resource_rows(msg: Message, skip: Sequence[str] = ()) -> list[tuple[str, str]]:
    return [(f.name, _human(msg, f.name)) for f in msg.DESCRIPTOR.fields if f.name not in skip]


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], out: IO[str], indent: str = "") -> None:
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in (headers, *rows):
        out.write(indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def print_resources(msgs: Sequence[Message], kind: type[Message], out: IO[str]) -> None:
    """An aligned table of resources of one type, a few chosen columns each."""
    columns = _COLUMNS[kind.DESCRIPTOR.full_name]
    rows = [[_human(m, name) for _, name in columns] for m in msgs]
    print_table([h for h, _ in columns], rows, out)


def _attempt_error(attempt: Attempt) -> str:
    parts = ["circuit open, skipped" if attempt.circuit_open else "", _human(attempt, "error_kind"), attempt.error]
    return ": ".join(p for p in parts if p and p != _EMPTY) or _EMPTY


def print_attempts(attempts: Sequence[Attempt], out: IO[str], indent: str = "  ") -> None:
    """Each upstream attempt on its own line: target, provider, model, status, latency, error."""
    rows = [
        [
            str(i),
            a.target or _EMPTY,
            a.provider or _EMPTY,
            a.model or _EMPTY,
            str(a.status_code or _EMPTY),
            str(a.retry_index),
            f"{a.latency_ms}ms" + (f" ({a.poll_count} polls)" if a.poll_count else ""),
            _attempt_error(a),
        ]
        for i, a in enumerate(attempts, 1)
    ]
    print_table(["#", "TARGET", "PROVIDER", "MODEL", "STATUS", "RETRY", "LATENCY", "ERROR"], rows, out, indent)


def fallback_line(served_target: str, attempts: Sequence[Attempt]) -> str:
    failed = sum(1 for a in attempts if a.error_kind != ErrorKind.ERROR_KIND_UNSPECIFIED)
    return f"FALLBACK: served by {served_target or 'a later target'} after {failed} failed attempt(s)"


def print_log(log: RequestLog, out: IO[str]) -> None:
    print_fields(resource_rows(log, skip=("attempts", "images")), out)
    out.write("attempts:\n")
    print_attempts(log.attempts, out)
    if log.fallback_used:
        out.write(fallback_line(log.served_target, log.attempts) + "\n")
    for image in log.images:
        size = f"{image.width}x{image.height}"
        out.write(f"image: {size} {image.mime_type} {image.bytes} bytes sha256={image.sha256}\n")


def log_line(log: RequestLog) -> str:
    """One request log on one line, for a stream (``logs tail``); empty fields shown as ``-``."""
    fallback = " FALLBACK" if log.fallback_used else ""
    return (
        f"{_human(log, 'create_time')} {log.id} {log.status_code} {_human(log, 'provider')} "
        f"{_human(log, 'model')} {_human(log, 'served_target')}{fallback} attempts={len(log.attempts)} "
        f"{log.latency_ms}ms ${log.cost_usd:.4f} cache={_human(log, 'cache_status')} trace={log.trace_id}"
    )


def print_outcome(outcome: RoutingOutcome, files: Sequence[tuple[Path, Image]], out: IO[str]) -> None:
    print_fields(
        [
            ("provider", _human(outcome, "provider")),
            ("model", _human(outcome, "model")),
            ("target", _human(outcome, "served_target")),
            ("fallback", _human(outcome, "fallback_used")),
            ("retries", _human(outcome, "retry_attempt_count")),
            ("cache", _human(outcome, "cache_status")),
            ("cost_usd", _human(outcome, "cost_usd")),
            ("trace_id", _human(outcome, "trace_id")),
            ("log_id", _human(outcome, "log_id")),
        ],
        out,
    )
    if outcome.fallback_used:
        out.write(fallback_line(outcome.served_target, outcome.attempts) + "\n")
    if len(outcome.attempts) > 1 or outcome.fallback_used:
        out.write("attempts:\n")
        print_attempts(outcome.attempts, out)
    for path, image in files:
        size = f"{image.width}x{image.height} " if image.width and image.height else ""
        out.write(f"wrote: {path} ({size}{image.mime_type or 'unknown type'}, {len(image.data)} bytes)\n")


def print_failure(failure: GenerateImageFailure, out: IO[str]) -> None:
    """What a failed image request tried, under the ``error:`` line."""
    rows = [("trace_id", failure.trace_id or _EMPTY), ("log_id", failure.log_id or _EMPTY)]
    if failure.http_status:
        rows.append(("http_status", str(failure.http_status)))
    print_fields(rows, out)
    if failure.attempts:
        out.write("attempts:\n")
        print_attempts(failure.attempts, out)
