"""The request log and routing outcomes in the API's messages: attempts, error kinds, cache statuses.

The stored payload is already the RequestLog message in protobuf's JSON form
(``observability/log_records.py``), so reading one back is protobuf's own parser.
"""

from __future__ import annotations

from google.protobuf import json_format

from imagegateway.v1 import images_pb2, logs_pb2
from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.result import AttemptRecord
from imagegateway_server.observability.log_records import CACHE_STATUS_NAMES, error_kind_name
from imagegateway_server.storage.records import LogRecord

# The gateway's cache statuses on the wire.
CACHE_STATUS_PROTO: dict[CacheStatus, images_pb2.CacheStatus.ValueType] = {
    status: images_pb2.CacheStatus.Value(name) for status, name in CACHE_STATUS_NAMES.items()
}


def error_kind_proto(kind: ErrorKind | None) -> images_pb2.ErrorKind.ValueType:
    """Maps the domain kind onto the proto enum (local-only kinds fold into the nearest one)."""
    return images_pb2.ErrorKind.Value(error_kind_name(kind))


def attempt_proto(attempt: AttemptRecord) -> images_pb2.Attempt:
    """One attempt as the API reports it in outcomes and failures."""
    return images_pb2.Attempt(
        target=attempt.target,
        provider=attempt.provider,
        model=attempt.model,
        status_code=attempt.status_code,
        error_kind=error_kind_proto(attempt.error_kind),
        error=attempt.error,
        latency_ms=attempt.latency_ms,
        retry_index=attempt.retry_index,
        circuit_open=attempt.circuit_open,
        translations=attempt.translations,
        poll_count=attempt.poll_count,
        poll_wait_ms=round(attempt.poll_seconds * 1000),
        stream_events=attempt.stream_events,
    )


def log_from_record(record: LogRecord) -> logs_pb2.RequestLog:
    """The API view of a stored record."""
    return json_format.Parse(record.payload, logs_pb2.RequestLog())
