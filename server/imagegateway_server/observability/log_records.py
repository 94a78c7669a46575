"""The request-log record of one generation request (one record per request, always), and how it is built."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.domain.errors import ErrorKind, RequestFailed
from imagegateway_server.domain.image_inputs import InputImage, Operation
from imagegateway_server.domain.result import AttemptRecord
from imagegateway_server.domain.usage import token_counts
from imagegateway_server.observability.random_ids import random_hex_id
from imagegateway_server.storage.records import LogRecord

if TYPE_CHECKING:
    from imagegateway_server.domain.calls import GenerationCall
    from imagegateway_server.domain.request import ImageRequest
    from imagegateway_server.domain.result import RoutedResult

# The payload is the API's RequestLog message in protobuf's JSON mapping (snake_case names, fields at
# their default left out, enums by name, int64 as strings), so ``api/log_mapping.py`` reads it back
# with protobuf's parser; it is written here as plain JSON so this layer needs no generated code.
CACHE_STATUS_NAMES: dict[CacheStatus, str] = {status: f"CACHE_STATUS_{status.value}" for status in CacheStatus}

# Local-only kinds have no value on the wire and fold into the nearest one.
_FOLDED_KINDS = {
    ErrorKind.ALREADY_EXISTS: ErrorKind.BAD_REQUEST,
    ErrorKind.FAILED_PRECONDITION: ErrorKind.BAD_REQUEST,
    ErrorKind.DEADLINE_EXCEEDED: ErrorKind.TIMEOUT,
}


def wire_error_kind(kind: ErrorKind | None) -> ErrorKind | None:
    """The kind as the API reports it (local-only kinds folded into the nearest wire kind)."""
    return None if kind is None else _FOLDED_KINDS.get(kind, kind)


def error_kind_name(kind: ErrorKind | None) -> str:
    """The API's ErrorKind enum name for a kind (``ERROR_KIND_UNSPECIFIED`` for none)."""
    folded = wire_error_kind(kind)
    return "ERROR_KIND_UNSPECIFIED" if folded is None else f"ERROR_KIND_{folded.value}"


def _timestamp(when: datetime) -> str:
    """RFC 3339 in UTC as protobuf's JSON mapping writes a Timestamp (0, 3 or 6 fraction digits)."""
    text = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    micros = when.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def _without_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    # proto3 leaves scalars at their default out of the JSON form; so do we, to read back the same.
    return {
        name: value
        for name, value in fields.items()
        if value not in ("", 0, False, None, [], {}) or (isinstance(value, float) and value != 0)
    }


def attempt_document(attempt: AttemptRecord) -> dict[str, Any]:
    """One attempt as the payload's ``attempts[]`` entry."""
    kind = error_kind_name(attempt.error_kind)
    return _without_defaults(
        {
            "target": attempt.target,
            "provider": attempt.provider,
            "model": attempt.model,
            "status_code": attempt.status_code,
            "error_kind": "" if kind == "ERROR_KIND_UNSPECIFIED" else kind,
            "error": attempt.error,
            "latency_ms": str(attempt.latency_ms) if attempt.latency_ms else "",
            "retry_index": attempt.retry_index,
            "circuit_open": attempt.circuit_open,
            "translations": list(attempt.translations),
            "poll_count": attempt.poll_count,
            "poll_wait_ms": str(round(attempt.poll_seconds * 1000)) if attempt.poll_seconds else "",
            "stream_events": attempt.stream_events,
        }
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
    cache_status: CacheStatus
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
        attempts = routed.attempts if routed else (failure.attempts if failure else ())
        status_code, error_kind, error, provider, model, served_target, fallback_used = 0, "", "", "", "", "", False
        images: list[dict[str, Any]] = []
        substitution: dict[str, Any] = {}
        usage: dict[str, Any] = {}
        if routed is not None:
            status_code = 200
            provider = routed.provider
            model = routed.result.model or (attempts[-1].model if attempts else "")
            served_target = routed.leaf.path
            fallback_used = routed.fallback_used
            if routed.substitution is not None:
                substitution = _without_defaults(dataclasses.asdict(routed.substitution))
            usage = {name: str(count) for name, count in token_counts(routed.result.usage).items()}
            if hashes is None:
                hashes = [image_sha256(data) for data in self.image_data()]
            images = [
                _without_defaults(
                    {
                        "sha256": sha256,
                        "width": image.width,
                        "height": image.height,
                        "bytes": str(len(image.data)) if image.data else "",
                        "mime_type": image.mime_type,
                    }
                )
                for image, sha256 in zip(routed.result.images, hashes, strict=True)
            ]
        elif failure is not None:
            status_code = failure.error.status_code
            error_kind = error_kind_name(failure.error.kind)
            error = failure.error.message
            if attempts:
                provider = attempts[-1].provider
                model = attempts[-1].model
                # fallback_used stays False: it means a target other than the first served, and none did.
        document = _without_defaults(
            {
                "id": self.id,
                "trace_id": self.trace_id,
                "create_time": _timestamp(self.create_time),
                "status_code": status_code,
                "error_kind": "" if error_kind == "ERROR_KIND_UNSPECIFIED" else error_kind,
                "error": error,
                "transport": call.transport,
                "caller_key_id": call.caller.key_id,
                "config_id": self.config_id,
                "config_version": self.config_version,
                "requested_model": call.request.model or "",
                "provider": provider,
                "model": model,
                "served_target": served_target,
                "fallback_used": fallback_used,
                "cache_status": CACHE_STATUS_NAMES[self.cache_status],
                "attempts": [attempt_document(a) for a in attempts],
                "images": images,
                "latency_ms": str(self.latency_ms) if self.latency_ms else "",
                "prompt": "" if self.redact_prompt else call.request.prompt,
                "metadata": dict(call.metadata),
                "cost_usd": self.cost_usd,
                "model_substitution": substitution,
                "usage": usage,
                **_inputs(call.request),
            }
        )
        return LogRecord(
            id=self.id,
            trace_id=self.trace_id,
            create_time=self.create_time,
            status_code=status_code,
            provider=provider,
            model=model,
            caller_key_id=call.caller.key_id,
            config_id=self.config_id,
            fallback_used=fallback_used,
            payload=orjson.dumps(document).decode(),
            virtual_key_id=self.virtual_key_id,
            cost_usd=self.cost_usd,
        )


def _inputs(request: ImageRequest) -> dict[str, Any]:
    """An edit's or a variation's operation and input images, described by size and SHA-256, never bytes."""
    if request.operation is Operation.GENERATE:
        return {}
    described: dict[str, Any] = {
        "operation": request.operation.value,
        "input_images": [_logged_input(image) for image in request.images],
    }
    if request.mask is not None:
        described["input_mask"] = _logged_input(request.mask)
    if request.markup is not None:
        described["input_markup"] = _logged_input(request.markup)
    return described


def _logged_input(image: InputImage) -> dict[str, Any]:
    return {
        "sha256": image.sha256,
        "width": image.width,
        "height": image.height,
        "bytes": str(image.byte_count),
        "mime_type": image.mime_type,
    }


def pending_log_record(
    call: GenerationCall,
    *,
    trace_id: str,
    started: float,
    config_id: str,
    config_version: int,
    routed: RoutedResult | None = None,
    failure: RequestFailed | None = None,
    cache_status: CacheStatus = CacheStatus.DISABLED,
    cost_usd: float = 0.0,
    redact_prompt: bool = False,
) -> PendingLogRecord:
    """The record of a request that ends now (``started`` is its ``time.monotonic()`` start).

    ``redact_prompt`` (IMAGEGW_REDACT_PROMPTS) stores an empty prompt; the rest of the record is kept.
    """
    attempts = routed.attempts if routed else (failure.attempts if failure else ())
    return PendingLogRecord(
        id="log_" + random_hex_id(),
        create_time=datetime.now(UTC),
        latency_ms=int((time.monotonic() - started) * 1000),
        # The record waits for its batch; an edit's input images (megabytes) need not wait with it.
        call=dataclasses.replace(call, request=call.request.without_input_bytes()) if call.request.images else call,
        trace_id=trace_id,
        config_id=config_id,
        config_version=config_version,
        routed=routed,
        failure=failure,
        cache_status=cache_status,
        cost_usd=cost_usd,
        virtual_key_id=charged_virtual_key(call, routed, attempts),
        redact_prompt=redact_prompt,
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
            records.append(entry.build(hashes[start : start + count]))
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
