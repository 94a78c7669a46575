"""Trace identity of one request: the trace id, W3C ``traceparent`` parsing, and the per-request context.

The trace id is the caller's ``x-portkey-trace-id`` (REST header, gRPC metadata or request field);
without one, the trace-id of a valid W3C ``traceparent``; without either, a new random id. Both
front ends resolve it once per request and bind it to ``current_trace_id`` so every process log
line written while serving the request carries it (see ``logging.JsonFormatter``).

When the caller sent a valid ``traceparent``, providers get one too: the same trace, a new span id
(the gateway's own span), the caller's flags, and the caller's ``tracestate`` passed on unchanged.
Parsing is strict (version ``00``, lowercase hex, non-zero ids, exactly 55 characters): anything
else is ignored, never an error, as the W3C recommendation asks of a receiver that cannot parse it.
"""

from __future__ import annotations

import contextvars
import dataclasses
import re
from collections.abc import Mapping

from imagegateway_server.domain.trace_context import TraceParent
from imagegateway_server.observability.random_ids import random_hex_id

current_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("imagegateway_trace_id", default=None)

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# W3C caps tracestate at 32 list members; 512 characters is the size every vendor must accept.
_MAX_TRACESTATE = 512


@dataclasses.dataclass(frozen=True, slots=True)
class TraceContext:
    """The trace of one request: its id, and the caller's W3C context when one came."""

    trace_id: str
    parent: TraceParent | None = None


def upstream_trace_headers(parent: TraceParent | None) -> dict[str, str]:
    """Headers for this request's provider calls: a child ``traceparent`` when the caller sent one."""
    return parent.child().headers() if parent is not None else {}


def new_trace_id() -> str:
    """A random trace id; 32 lowercase hex digits, so it is also a valid W3C trace-id."""
    return random_hex_id()


def parse_traceparent(value: str | None, tracestate: str | None = None) -> TraceParent | None:
    """The W3C context in ``value``, or None when it is absent or not strictly valid."""
    if not value:
        return None
    match = _TRACEPARENT.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    trace_id, parent_id, flags = match.groups()
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    state = tracestate.strip(" \t") if tracestate else None
    if state and (len(state) > _MAX_TRACESTATE or not all(" " <= c <= "~" for c in state)):
        state = None  # a tracestate we cannot pass on safely is dropped; the traceparent still holds
    return TraceParent(trace_id, parent_id, flags, state or None)


def resolve_trace(explicit: str | None, headers: Mapping[str, str]) -> TraceContext:
    """The request's trace: ``explicit`` (x-portkey-trace-id) wins, then ``traceparent``, else a new id.

    ``headers`` are the caller's headers or gRPC metadata with lowercase names.
    """
    parent = parse_traceparent(headers.get("traceparent"), headers.get("tracestate"))
    if explicit:
        return TraceContext(explicit, parent)
    if parent is not None:
        return TraceContext(parent.trace_id, parent)
    return TraceContext(new_trace_id(), None)


def bind_trace_id(trace_id: str) -> None:
    """Marks every log line written from here to the end of the current task with ``trace_id``.

    Each request runs in its own task (uvicorn starts one per HTTP request, grpc.aio one per RPC),
    and a task owns a copy of the context, so the value ends with the request. It is deliberately
    not reset when the handler returns: the error logging of the middleware and interceptors that
    wrap the handler runs later in the same task, and belongs to the request too.
    """
    current_trace_id.set(trace_id)
