"""The request-log record of one generation request (one record per request, always), and how it is built."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from google.protobuf import json_format

from imagegateway.v1 import images_pb2, logs_pb2
from imagegateway_server.domain.errors import ErrorKind, RequestFailed
from imagegateway_server.domain.result import AttemptRecord
from imagegateway_server.observability.random_ids import random_hex_id
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


# At or above this many image bytes in one build, the SHA-256s are computed in a worker thread:
# hashlib releases the GIL for large buffers, so hashing uses the second core and the event loop
# stays free (1 MiB takes ~0.7 ms). Below it, a thread hand-off costs more than the hashing.
HASH_IN_THREAD_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class PendingLogRecord:
    """The log record of one finished request, before it is built.

    What only the request's end knows is fixed here, cheaply, on the response path: the id (it goes
    into the response), the time, the latency, the cost and the virtual key charged. Building the
    record (image SHA-256s, the RequestLog message, its JSON) is left to the log writer, off the
    response path (``build_log_records``). Image bytes are referenced until then, not copied.
    """

    id: str
    create_time: datetime
    latency_ms: int
    # Left out of repr: the call holds the caller's headers (their API key) and the prompt.
    call: GenerationCall = dataclasses.field(repr=False)
    trace_id: str
    config_id: str
    config_version: int
    routed: RoutedResult | None = dataclasses.field(repr=False)
    failure: RequestFailed | None = dataclasses.field(repr=False)
    cache_status: str
    cost_usd: float
    virtual_key_id: str
    redact_prompt: bool

    def image_data(self) -> list[bytes]:
        """The bytes of the served images (empty for URL images), whose SHA-256s the record holds."""
        if self.routed is None:
            return []
        return [image.data or b"" for image in self.routed.result.images]

    def build(self, hashes: Sequence[str] | None = None) -> LogRecord:
        """The LogRecord, whose payload is the RequestLog message as JSON.

        ``hashes`` are the SHA-256s of ``image_data()`` in order; without them they are computed here.
        """
        call, routed, failure = self.call, self.routed, self.failure
        entry = logs_pb2.RequestLog(
            id=self.id,
            trace_id=self.trace_id,
            transport=call.transport,
            caller_key_id=call.caller.key_id,
            config_id=self.config_id,
            config_version=self.config_version,
            requested_model=call.request.model or "",
            latency_ms=self.latency_ms,
            prompt="" if self.redact_prompt else call.request.prompt,
            metadata=dict(call.metadata),
            cost_usd=self.cost_usd,
            cache_status=CACHE_STATUS_PROTO[self.cache_status],
        )
        entry.create_time.FromDatetime(self.create_time)
        attempts = routed.attempts if routed else (failure.attempts if failure else ())
        entry.attempts.extend(attempt_proto(a) for a in attempts)
        if routed is not None:
            entry.status_code = 200
            entry.provider = routed.provider
            entry.model = routed.result.model or (attempts[-1].model if attempts else "")
            entry.served_target = routed.leaf.path
            entry.fallback_used = routed.fallback_used
            if hashes is None:
                hashes = [image_sha256(data) for data in self.image_data()]
            for image, sha256 in zip(routed.result.images, hashes, strict=True):
                entry.images.add(sha256=sha256, width=image.width, height=image.height,
                                 bytes=len(image.data or b""), mime_type=image.mime_type)
        elif failure is not None:
            entry.status_code = failure.error.status_code
            entry.error_kind = error_kind_proto(failure.error.kind)
            entry.error = failure.error.message
            if attempts:
                entry.provider = attempts[-1].provider
                entry.model = attempts[-1].model
                entry.fallback_used = len({a.target for a in attempts}) > 1
        return LogRecord(
            id=self.id, trace_id=self.trace_id, create_time=self.create_time, status_code=entry.status_code,
            provider=entry.provider, model=entry.model, caller_key_id=entry.caller_key_id,
            config_id=self.config_id, fallback_used=entry.fallback_used,
            payload=json_format.MessageToJson(entry, preserving_proto_field_name=True, indent=None),
            virtual_key_id=self.virtual_key_id, cost_usd=self.cost_usd,
        )


def pending_log_record(
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
) -> PendingLogRecord:
    """The record of a request that ends now (``started`` is its ``time.monotonic()`` start).

    ``redact_prompt`` (IMAGEGW_REDACT_PROMPTS) stores an empty prompt; the rest of the record is kept.
    """
    attempts = routed.attempts if routed else (failure.attempts if failure else ())
    return PendingLogRecord(
        id="log_" + random_hex_id(), create_time=datetime.now(UTC),
        latency_ms=int((time.monotonic() - started) * 1000), call=call, trace_id=trace_id, config_id=config_id,
        config_version=config_version, routed=routed, failure=failure, cache_status=cache_status,
        cost_usd=cost_usd, virtual_key_id=charged_virtual_key(call, routed, attempts), redact_prompt=redact_prompt,
    )


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest() if data else ""


def _sha256s(blobs: Sequence[bytes]) -> list[str]:
    return [image_sha256(data) for data in blobs]


async def build_log_records(entries: Sequence[LogRecord | PendingLogRecord]) -> list[LogRecord]:
    """The records of ``entries`` in order, built ones passed through; large images hashed in a thread."""
    pending = [entry for entry in entries if isinstance(entry, PendingLogRecord)]
    blobs = [data for entry in pending for data in entry.image_data()]
    if sum(map(len, blobs)) >= HASH_IN_THREAD_BYTES:
        hashes = await asyncio.to_thread(_sha256s, blobs)
    else:
        hashes = _sha256s(blobs)
    records: list[LogRecord] = []
    start = 0
    for entry in entries:
        if isinstance(entry, PendingLogRecord):
            count = len(entry.routed.result.images) if entry.routed is not None else 0
            records.append(entry.build(hashes[start:start + count]))
            start += count
        else:
            records.append(entry)
    return records


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
