"""A caller's W3C trace context (``traceparent`` / ``tracestate``), as the core carries it to providers.

Parsing the headers is the front ends' business (``observability/tracing.py``); this is the value.
"""

from __future__ import annotations

import dataclasses
import secrets

_ZERO_SPAN = "0" * 16


@dataclasses.dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed W3C trace context: trace id, parent span id, flags and the opaque ``tracestate``."""

    trace_id: str
    parent_id: str
    flags: str
    tracestate: str | None = None

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.parent_id}-{self.flags}"

    def child(self) -> TraceParent:
        """The same trace under a new span id (ours), as sent to providers."""
        return dataclasses.replace(self, parent_id=new_span_id())

    def headers(self) -> dict[str, str]:
        """The propagation headers for this context."""
        headers = {"traceparent": self.header()}
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers


def new_span_id() -> str:
    """A random, non-zero W3C span id (16 lowercase hex digits)."""
    while True:
        span = secrets.token_hex(8)
        if span != _ZERO_SPAN:
            return span
