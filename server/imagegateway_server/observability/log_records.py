"""Builds the request-log record of one generation request (one record per request, always)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf import json_format

from imagegateway.v1 import images_pb2, logs_pb2
from imagegateway_server.domain.errors import ErrorKind, RequestFailed
from imagegateway_server.domain.result import AttemptRecord
from imagegateway_server.storage.records import LogRecord

if TYPE_CHECKING:
    from imagegateway_server.gateway import GenerationCall
    from imagegateway_server.routing.router import RoutedResult


# The gateway's cache statuses (routing.cache.CacheStatus values) on the wire.
CACHE_STATUS_PROTO: dict[str, images_pb2.CacheStatus.ValueType] = {
    "DISABLED": images_pb2.CACHE_STATUS_DISABLED,
    "HIT": images_pb2.CACHE_STATUS_HIT,
    "MISS": images_pb2.CACHE_STATUS_MISS,
    "REFRESH": images_pb2.CACHE_STATUS_REFRESH,
}


def error_kind_proto(kind: ErrorKind | None) -> images_pb2.ErrorKind.ValueType:
    """Maps the domain kind onto the proto enum (local-only kinds fold into the nearest one)."""
    if kind is None:
        return images_pb2.ERROR_KIND_UNSPECIFIED
    folded = {
        ErrorKind.ALREADY_EXISTS: ErrorKind.BAD_REQUEST,
        ErrorKind.FAILED_PRECONDITION: ErrorKind.BAD_REQUEST,
        ErrorKind.DEADLINE_EXCEEDED: ErrorKind.TIMEOUT,
    }.get(kind, kind)
    return images_pb2.ErrorKind.Value(f"ERROR_KIND_{folded.value}")


def attempt_proto(attempt: AttemptRecord) -> images_pb2.Attempt:
    return images_pb2.Attempt(
        target=attempt.target, provider=attempt.provider, model=attempt.model,
        status_code=attempt.status_code, error_kind=error_kind_proto(attempt.error_kind),
        error=attempt.error, latency_ms=attempt.latency_ms, retry_index=attempt.retry_index,
        circuit_open=attempt.circuit_open, translations=attempt.translations,
    )


def build_log_record(
    call: GenerationCall,
    *,
    trace_id: str,
    started: float,
    config_id: str,
    config_version: int,
    routed: RoutedResult | None = None,
    failure: RequestFailed | None = None,
    cache_status: str = "DISABLED",
    cost_usd: float = 0.0,
    redact_prompt: bool = False,
) -> LogRecord:
    """One LogRecord whose payload is the RequestLog message as JSON.

    ``redact_prompt`` (IMAGEGW_REDACT_PROMPTS) stores an empty prompt; the rest of the record is kept.
    """
    now = datetime.now(UTC)
    entry = logs_pb2.RequestLog(
        id="log_" + uuid.uuid4().hex,
        trace_id=trace_id,
        transport=call.transport,
        caller_key_id=call.caller.key_id,
        config_id=config_id,
        config_version=config_version,
        requested_model=call.request.model or "",
        latency_ms=int((time.monotonic() - started) * 1000),
        prompt="" if redact_prompt else call.request.prompt,
        metadata=dict(call.metadata),
        cost_usd=cost_usd,
        cache_status=CACHE_STATUS_PROTO[cache_status],
    )
    entry.create_time.FromDatetime(now)
    attempts = routed.attempts if routed else (failure.attempts if failure else ())
    entry.attempts.extend(attempt_proto(a) for a in attempts)
    if routed is not None:
        entry.status_code = 200
        entry.provider = routed.provider
        entry.model = routed.result.model or (attempts[-1].model if attempts else "")
        entry.served_target = routed.leaf.path
        entry.fallback_used = routed.fallback_used
        for image in routed.result.images:
            data = image.data or b""
            entry.images.add(sha256=hashlib.sha256(data).hexdigest() if data else "", width=image.width,
                             height=image.height, bytes=len(data), mime_type=image.mime_type)
    elif failure is not None:
        entry.status_code = failure.error.status_code
        entry.error_kind = error_kind_proto(failure.error.kind)
        entry.error = failure.error.message
        if attempts:
            entry.provider = attempts[-1].provider
            entry.model = attempts[-1].model
            entry.fallback_used = len({a.target for a in attempts}) > 1
    return LogRecord(
        id=entry.id, trace_id=trace_id, create_time=now, status_code=entry.status_code, provider=entry.provider,
        model=entry.model, caller_key_id=entry.caller_key_id, config_id=config_id,
        fallback_used=entry.fallback_used,
        payload=json_format.MessageToJson(entry, preserving_proto_field_name=True, indent=None),
        virtual_key_id=charged_virtual_key(call, routed, attempts), cost_usd=cost_usd,
    )


def charged_virtual_key(call: GenerationCall, routed: RoutedResult | None, attempts: Sequence[AttemptRecord]) -> str:
    """The virtual key a request's cost is charged to: the serving target's, else the last tried one's."""
    if routed is not None:
        return routed.leaf.virtual_key or ""
    if attempts:
        return attempts[-1].virtual_key
    return call.routing.virtual_key or ""


def log_from_record(record: LogRecord) -> logs_pb2.RequestLog:
    """The API view of a stored record."""
    return json_format.Parse(record.payload, logs_pb2.RequestLog())
