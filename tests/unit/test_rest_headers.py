"""The shim decodes a request's headers once; look-ups answer as Starlette's Headers did."""

from __future__ import annotations

from starlette.datastructures import Headers

from imagegateway_server.api.rest_mapping import RequestHeaders

RAW = [
    (b"content-type", b"application/json"),
    (b"x-portkey-config", b"cfg-1"),
    (b"x-portkey-metadata", b'{"team":"caf\xe9"}'),
]


def test_look_ups_match_starlettes_headers() -> None:
    headers = RequestHeaders(RAW)
    starlette = Headers(raw=RAW)
    for name in ("content-type", "x-portkey-config", "x-portkey-metadata", "authorization"):
        assert headers.get(name) == starlette.get(name)
    assert headers.last == {k.lower(): v for k, v in starlette.items()}


def test_a_repeated_header_answers_its_first_value_and_the_core_sees_its_last() -> None:
    raw = [*RAW, (b"x-portkey-config", b"cfg-2")]
    headers = RequestHeaders(raw)
    assert headers["x-portkey-config"] == Headers(raw=raw)["x-portkey-config"] == "cfg-1"
    assert headers.last["x-portkey-config"] == "cfg-2"
    assert headers["content-type"] == "application/json"
