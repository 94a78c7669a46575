"""Trace identity: strict W3C traceparent parsing, which id a request gets, and trace ids in log lines."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re

from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.domain.trace_context import TraceParent
from imagegateway_server.observability.logging import JsonFormatter
from imagegateway_server.observability.tracing import (
    bind_trace_id,
    current_trace_id,
    new_trace_id,
    parse_traceparent,
    resolve_trace,
    upstream_trace_headers,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"
HEX = "0123456789abcdef"


def test_a_valid_traceparent_parses_into_its_parts() -> None:
    parsed = parse_traceparent(VALID)
    assert parsed == TraceParent(TRACE, SPAN, "01")
    assert parsed.header() == VALID


def test_surrounding_whitespace_is_tolerated() -> None:
    assert parse_traceparent(f"  {VALID}\t") == TraceParent(TRACE, SPAN, "01")


def test_malformed_traceparents_are_ignored() -> None:
    for bad in (
        "",
        "garbage",
        VALID.upper(),  # hex must be lowercase
        f"01-{TRACE}-{SPAN}-01",  # only version 00 is accepted
        f"ff-{TRACE}-{SPAN}-01",
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
        f"00-{TRACE}-{SPAN}-1",  # short flags
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00_{TRACE}_{SPAN}_01",
        f"00-{TRACE}-{SPAN[:-1]}g-01",
    ):
        assert parse_traceparent(bad) is None, bad


@given(st.text(max_size=80))
def test_parsing_never_raises_and_accepts_only_the_strict_form(value: str) -> None:
    parsed = parse_traceparent(value)
    if parsed is not None:
        assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}", parsed.header())
        assert parsed.trace_id != "0" * 32 and parsed.parent_id != "0" * 16


@given(
    st.text(HEX, min_size=32, max_size=32).filter(lambda t: t != "0" * 32),
    st.text(HEX, min_size=16, max_size=16).filter(lambda s: s != "0" * 16),
    st.text(HEX, min_size=2, max_size=2),
)
def test_every_well_formed_traceparent_round_trips(trace: str, span: str, flags: str) -> None:
    header = f"00-{trace}-{span}-{flags}"
    parsed = parse_traceparent(header)
    assert parsed is not None and parsed.header() == header


def test_child_keeps_trace_and_flags_under_a_new_span() -> None:
    parent = parse_traceparent(VALID, "vendor=abc")
    assert parent is not None
    child = parent.child()
    assert (child.trace_id, child.flags, child.tracestate) == (TRACE, "01", "vendor=abc")
    assert child.parent_id != SPAN and re.fullmatch(r"[0-9a-f]{16}", child.parent_id)
    assert child.parent_id != "0" * 16


def test_upstream_headers_carry_a_child_traceparent_and_the_tracestate() -> None:
    headers = upstream_trace_headers(parse_traceparent(VALID, "congo=t61rcWkgMzE"))
    assert set(headers) == {"traceparent", "tracestate"}
    forwarded = parse_traceparent(headers["traceparent"])
    assert forwarded is not None and forwarded.trace_id == TRACE and forwarded.parent_id != SPAN
    assert headers["tracestate"] == "congo=t61rcWkgMzE"
    assert upstream_trace_headers(None) == {}


def test_an_oversized_or_unprintable_tracestate_is_dropped_but_the_traceparent_kept() -> None:
    assert parse_traceparent(VALID, "a=" + "x" * 600) == TraceParent(TRACE, SPAN, "01")
    assert parse_traceparent(VALID, "a=b\nc") == TraceParent(TRACE, SPAN, "01")


def test_the_portkey_trace_id_wins_over_the_traceparent_which_is_still_propagated() -> None:
    trace = resolve_trace("my-trace", {"traceparent": VALID})
    assert trace.trace_id == "my-trace"
    assert trace.parent is not None and trace.parent.trace_id == TRACE


def test_without_a_portkey_trace_id_the_traceparent_trace_id_is_the_trace_id() -> None:
    trace = resolve_trace(None, {"traceparent": VALID})
    assert trace.trace_id == TRACE


def test_a_malformed_traceparent_is_ignored_and_a_trace_id_generated() -> None:
    trace = resolve_trace("", {"traceparent": "00-nope"})
    assert trace.parent is None
    assert re.fullmatch(r"[0-9a-f]{32}", trace.trace_id)
    assert trace.trace_id != resolve_trace("", {}).trace_id
    assert parse_traceparent(f"00-{new_trace_id()}-{SPAN}-00") is not None  # generated ids are W3C-valid


def _json_line(message: str) -> dict[str, object]:
    record = logging.LogRecord("imagegateway_server.test", logging.INFO, __file__, 1, message, None, None)
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


def test_json_log_lines_carry_the_trace_id_of_the_request_being_served() -> None:
    def inside_request() -> dict[str, object]:
        bind_trace_id("trace-abc")
        return _json_line("calling the provider")

    line = contextvars.copy_context().run(inside_request)
    assert line["trace_id"] == "trace-abc" and line["msg"] == "calling the provider"
    assert "trace_id" not in _json_line("outside any request")  # the binding stayed in its context


async def test_each_request_task_logs_its_own_trace_id() -> None:
    async def request(trace_id: str) -> list[object]:
        bind_trace_id(trace_id)
        lines = []
        for _ in range(3):
            await asyncio.sleep(0)  # interleave with the other request
            lines.append(_json_line("step")["trace_id"])
        return lines

    first, second = await asyncio.gather(request("trace-1"), request("trace-2"))
    assert first == ["trace-1"] * 3 and second == ["trace-2"] * 3
    assert current_trace_id.get() is None
