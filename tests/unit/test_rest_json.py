"""The shim's JSON: orjson where it gives the standard library's answer, the standard library where not."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from imagegateway_server.api import rest_json
from imagegateway_server.api.rest_errors import error_envelope


def stdlib_loads(raw: bytes) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    return json.loads(raw, parse_constant=refuse)


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0 are not the same answer)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prompt": "a cat", "n": 1, "size": "1024x1024"}',
        b'{"seed": 123456789012345678901234567890}',  # orjson alone would read a float
        b'{"seed": -9223372036854775809, "n": 18446744073709551616}',
        b'{"n": 9223372036854775807}',
        b'{"cfg_scale": 1e400}',  # json reads inf; orjson refuses
        b'{"prompt": "\\ud800"}',  # a lone surrogate: json takes it, orjson does not
        b'\xef\xbb\xbf{"prompt": "bom"}',
        b'{"a": 1, "a": 2}',
        b'{"prompt": "\\u00e9\\u732b", "x": [1, 2.5, -0, true, false, null]}',
        b' \n{"prompt": "spaces"}\t',
        b'"just a string"',
    ],
)
def test_bodies_parse_exactly_as_the_standard_library_reads_them(raw: bytes) -> None:
    assert same(rest_json.loads(raw), stdlib_loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"n": NaN}',
        b'{"n": Infinity}',
        b'{"n": -Infinity}',
        b"",
        b"{",
        b'{"a": 1,}',
        b"\xff\xfe",
        b"{'a': 1}",
        b'{"a": "\x01"}',
        b"[1] [2]",
    ],
)
def test_what_is_not_json_is_refused_as_a_value_error(raw: bytes) -> None:
    with pytest.raises(ValueError):
        rest_json.loads(raw)


def test_brackets_nested_past_any_parser_are_refused_not_a_crash() -> None:
    with pytest.raises((ValueError, RecursionError)):
        rest_json.loads(b"[" * 100_000)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_any_json_document_parses_as_the_standard_library_reads_it(value: Any) -> None:
    raw = json.dumps(value).encode()
    assert same(rest_json.loads(raw), stdlib_loads(raw))


def test_error_bodies_are_what_jsonresponse_sent() -> None:
    envelope = error_envelope(400, 'unknown model "x" — é', param="model", code=None)
    envelope["error"]["attempts"] = [
        {"target": "config.targets[0]", "status_code": 503, "latency_ms": 12, "circuit_open": False, "error": None}
    ]
    assert rest_json.dumps(envelope) == JSONResponse(envelope).body


def test_what_orjson_cannot_write_is_still_written() -> None:
    assert json.loads(rest_json.dumps({"seed": 2**70})) == {"seed": 2**70}
    assert json.loads(rest_json.dumps({"message": "bad \ud800"})) == {"message": "bad \ud800"}
