"""OpenTelemetry traces: one span per request and one child span per upstream attempt, over OTLP.

On only when the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``)
is set and neither ``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none`` says otherwise; when
off, the SDK is never imported. Every other ``OTEL_*`` variable means what the specification says
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_EXPORTER_OTLP_PROTOCOL`` grpc or
http/protobuf, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_*``): the SDK and its exporters read them.

Spans are made when a request is recorded, from the times the router already measured, so tracing
adds nothing to a request's path but the span objects and a queue put; a background thread of the
SDK batches and exports them. The request span's trace id is the one in the request log (a
``x-portkey-trace-id`` that is not 32 hex digits is hashed into one and kept as an attribute), its
parent is the caller's ``traceparent`` when one came, and it carries the GenAI semantic-convention
attributes where they fit (``gen_ai.*``) and the gateway's own (``imagegateway.*``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from imagegateway_server.domain.result import AttemptRecord
    from imagegateway_server.observability.log_records import PendingLogRecord

log = logging.getLogger(__name__)

# GenAI semantic conventions name a multimodal generation "generate_content"; an image request is one.
OPERATION = "generate_content"
_HEX_TRACE_ID = re.compile(r"[0-9a-f]{32}")


class RequestSpans(Protocol):
    """Turns a recorded request into spans; ``shutdown`` flushes what is queued."""

    def export(self, record: PendingLogRecord, started: float) -> None: ...

    def shutdown(self) -> None: ...


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for OTLP traces, as the OpenTelemetry specification reads it."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() in ("none", ""):
        return False
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def otel_trace_id(trace_id: str) -> tuple[int, bool]:
    """The 128-bit OpenTelemetry trace id of a log trace id, and whether it is that id itself
    (a W3C-shaped id is used as is; any other caller-chosen id is hashed into one)."""
    if _HEX_TRACE_ID.fullmatch(trace_id) and int(trace_id, 16):
        return int(trace_id, 16), True
    digest = int.from_bytes(hashlib.sha256(trace_id.encode("utf-8", "replace")).digest()[:16], "big")
    return digest or 1, False


def start_tracing(environ: Mapping[str, str]) -> RequestSpans | None:
    """The process's span exporter when the environment asks for one (the SDK imported only then)."""
    if not tracing_enabled(environ):
        return None
    return _OtlpRequestSpans(environ)


def _protocol(environ: Mapping[str, str]) -> str:
    value = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    # The specification's default is http/protobuf.
    return (value or "http/protobuf").strip().lower()


class _OtlpRequestSpans:
    """Spans through the OpenTelemetry SDK's batch processor to an OTLP exporter."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

        class LogTraceIds(RandomIdGenerator):
            """Random ids, except that a root span takes the request log's trace id."""

            def __init__(self) -> None:
                self.next_trace_id = 0

            def generate_trace_id(self) -> int:
                return self.next_trace_id or super().generate_trace_id()

        exporter: Any
        protocol = _protocol(environ)
        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

            exporter = GrpcExporter()
        elif protocol == "http/protobuf":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

            exporter = HttpExporter()
        else:
            raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: must be grpc or http/protobuf, got {protocol!r}")
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without either it
        # names the service "unknown_service...", which ours replaces.
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "imagegateway"}))
        self._ids = LogTraceIds()
        self._provider = TracerProvider(resource=resource, id_generator=self._ids)
        self._provider.add_span_processor(BatchSpanProcessor(exporter))
        self._tracer = self._provider.get_tracer("imagegateway")
        log.info("OpenTelemetry tracing on: OTLP over %s", protocol)

    def export(self, record: PendingLogRecord, started: float) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

        # The router timed everything with the monotonic clock; spans want wall-clock nanoseconds.
        wall_offset_ns = time.time_ns() - time.monotonic_ns()

        def wall_ns(monotonic_seconds: float) -> int:
            return int(monotonic_seconds * 1e9) + wall_offset_ns

        trace_id, same_id = otel_trace_id(record.trace_id)
        parent = record.call.trace_parent
        context = None
        if parent is not None and parent.trace_id == record.trace_id:
            # The caller's traceparent is the remote parent of the request span.
            remote = SpanContext(
                trace_id, int(parent.parent_id, 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
            )
            context = trace.set_span_in_context(NonRecordingSpan(remote))
        routed, failure = record.routed, record.failure
        attempts = routed.attempts if routed is not None else (failure.attempts if failure is not None else ())
        model = (routed.result.model if routed is not None else "") or (attempts[-1].model if attempts else "")
        provider = routed.provider if routed is not None else (attempts[-1].provider if attempts else "")
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": record.call.request.model or model,
            "gen_ai.response.model": model,
            "imagegateway.log_id": record.id,
            "imagegateway.transport": record.call.transport,
            "imagegateway.cache_status": record.cache_status.value.lower(),
            "imagegateway.cost_usd": record.cost_usd,
            "imagegateway.attempts": len(attempts),
        }
        if not same_id:
            attributes["imagegateway.trace_id"] = record.trace_id
        if record.config_id:
            attributes["imagegateway.config_id"] = record.config_id
        if routed is not None:
            attributes["imagegateway.target"] = routed.leaf.path
            attributes["imagegateway.fallback_used"] = routed.fallback_used
            attributes["imagegateway.images"] = len(routed.result.images)
        # A root span takes its trace id from the id generator; export runs on the event loop's
        # thread only, so setting it just before is safe.
        self._ids.next_trace_id = trace_id
        try:
            span = self._tracer.start_span(
                f"{OPERATION} {model}".strip(),
                context=context,
                kind=SpanKind.SERVER,
                attributes=attributes,
                start_time=wall_ns(started),
            )
        finally:
            self._ids.next_trace_id = 0
        if failure is not None:
            span.set_attribute("error.type", failure.error.kind.value.lower())
            span.set_status(Status(StatusCode.ERROR, failure.error.kind.value))
        request_context = trace.set_span_in_context(span)
        for attempt in attempts:
            self._attempt_span(attempt, request_context, wall_ns)
        span.end()  # now: a request is recorded the moment it ends

    def _attempt_span(self, attempt: AttemptRecord, context: Any, wall_ns: Any) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": attempt.provider,
            "gen_ai.request.model": attempt.model,
            "imagegateway.target": attempt.target,
            "imagegateway.retry_index": attempt.retry_index,
        }
        if attempt.status_code:
            attributes["http.response.status_code"] = attempt.status_code
        if attempt.circuit_open:
            attributes["imagegateway.circuit_open"] = True
        start = wall_ns(attempt.started) if attempt.started else None
        span = self._tracer.start_span(
            f"{OPERATION} {attempt.model}".strip(),
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=start,
        )
        if attempt.error_kind is not None:
            span.set_attribute("error.type", attempt.error_kind.value.lower())
            # The message is the provider's, scrubbed of secrets by the adapter, as in the request log.
            span.set_status(Status(StatusCode.ERROR, attempt.error or attempt.error_kind.value))
        span.end(end_time=(start + int(attempt.seconds * 1e9)) if start is not None else None)

    def shutdown(self) -> None:
        self._provider.shutdown()
