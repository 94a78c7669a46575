"""base64_json.loads gives exactly orjson.loads's answer, only without scanning long base64 strings."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.providers.kit import base64_json

SMALL = 16  # min_chars for the tests: long strings without megabytes of data


def b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def same(body: bytes, min_chars: int = SMALL) -> Any:
    try:
        expected = orjson.loads(body)
    except orjson.JSONDecodeError:
        with pytest.raises(orjson.JSONDecodeError):
            base64_json.loads(body, min_chars=min_chars)
        return None
    got = base64_json.loads(body, min_chars=min_chars)
    assert got == expected and type(got) is type(expected)
    return got


def test_an_openai_body_with_several_images_parses_like_orjson() -> None:
    payload = {
        "created": 1,
        "data": [{"b64_json": b64(3000), "revised_prompt": 'a "quoted" \\ prompt'}, {"b64_json": b64(5000)}],
        "usage": {"total_tokens": 7},
    }
    assert same(json.dumps(payload).encode()) == payload


def test_a_stability_body_parses_like_orjson() -> None:
    payload = {"artifacts": [{"base64": b64(4000), "seed": 42, "finishReason": "SUCCESS"}]}
    assert same(json.dumps(payload, indent=2).encode()) == payload


def test_the_real_threshold_takes_a_megabyte_image() -> None:
    payload = {"data": [{"b64_json": b64(1 << 20)}]}
    assert same(orjson.dumps(payload), base64_json.MIN_CHARS) == payload


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"b64_json": "' + b"QUJD" * 10 + b'"}',  # unterminated object
        b'{"data": [{"b64_json": "' + b"QUJD" * 10,  # unterminated string
        b'{"a": "' + b"QUJD" * 10 + b'\x01"}',  # control character: not base64
        b'{"a": "' + b"QUJD" * 10 + b'\\n"}',  # an escape: the plain parse decides
        b'{"a": "\\"' + b"QUJD" * 10 + b'"}',  # escaped quote before the run
        b'{"' + b"QUJD" * 10 + b'": 1}',  # a long base64 key, not a value
        b'["' + b"QUJD" * 10 + b'", "\\u0000imagegw-b64-0"]',  # a string spelt like a placeholder
        b'["' + b"QUJD" * 10 + b'", "\\u0000\\u0069magegw-b64-0"]',  # ... spelt with other escapes
        b'["' + b"QUJD" * 10 + b'", "' + b"QUJD" * 10 + b'"]',  # two long values
        b'\\"' + b"QUJD" * 10 + b'"',  # garbage before a quote
        b'"' + b"QUJD" * 10 + b'"',  # a bare long string
    ],
)
def test_unusual_bodies_parse_or_fail_exactly_like_orjson(body: bytes) -> None:
    same(body)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers(-(2**63), 2**63 - 1)
        | st.text(max_size=30)
        | st.sampled_from(["QUJD" * 8, "QUJD" * 8 + "QQ==", "QUJD" * 7 + "QU=D", "QUJD" * 9 + "\\"]),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
        max_leaves=12,
    )
)
def test_any_json_value_parses_like_orjson(value: Any) -> None:
    same(json.dumps(value).encode())
    same(orjson.dumps(value))


def test_the_image_strings_never_reach_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = orjson.loads

    def spy(body: bytes) -> Any:
        parsed.append(len(body))
        return real(body)

    monkeypatch.setattr(base64_json.orjson, "loads", spy)
    payload = {"data": [{"b64_json": b64(1 << 20)}, {"b64_json": b64(1 << 19)}]}
    assert base64_json.loads(orjson.dumps(payload)) == payload
    assert parsed and max(parsed) < 200


def test_long_image_values_of_the_named_keys_come_back_decoded() -> None:
    image, other = os.urandom(3000), b64(3000)
    body = json.dumps(
        {"data": [{"b64_json": base64.b64encode(image).decode(), "note": other}], "short": {"b64_json": "aGk="}}
    ).encode()
    got = base64_json.loads_decoding_base64(body, frozenset({"b64_json"}), min_chars=SMALL)
    item = got["data"][0]
    assert isinstance(item["b64_json"], base64_json.DecodedBase64) and item["b64_json"].data == image
    assert item["note"] == other  # another key's long string stays a string
    assert got["short"] == {"b64_json": "aGk="}  # too short to be taken: a string, as orjson gives it


def test_long_image_strings_listed_under_a_named_key_come_back_decoded() -> None:
    first, second = os.urandom(3000), os.urandom(3000)
    images = [base64.b64encode(first).decode(), base64.b64encode(second).decode()]
    body = json.dumps({"images": images, "error": None, "notes": [b64(3000)]}).encode()
    got = base64_json.loads_decoding_base64(body, frozenset({"images"}), min_chars=SMALL)
    assert [item.data for item in got["images"]] == [first, second]  # Bedrock's "images": [...]
    assert isinstance(got["notes"][0], str)


@given(st.binary(max_size=200))
@settings(max_examples=200)
def test_what_is_not_decoded_is_exactly_orjsons(noise: bytes) -> None:
    body = b'{"b64_json":"' + base64.b64encode(noise) + b'","x":[1,"\\u0000imagegw-b64-0"]}'
    got = base64_json.loads_decoding_base64(body, frozenset({"b64_json"}), min_chars=SMALL)
    # A string that looks like a placeholder makes the whole body take orjson's plain parse.
    assert got == orjson.loads(body)


@given(st.binary(max_size=200), st.binary(max_size=40), st.binary(max_size=40))
@settings(max_examples=200)
def test_a_body_inside_a_larger_buffer_is_read_in_place_between_its_bounds(
    noise: bytes, before: bytes, after: bytes
) -> None:
    # An SSE event's data read out of the chunk it arrived in: quotes and backslashes on either side
    # of the bounds (the chunk's other lines) change nothing.
    inner = b'{"b64_json":"' + base64.b64encode(noise) + b'","note":"\\\\"}'
    buffer = before + b'"\\' + inner + b'\\"' + after
    start = len(before) + 2
    got = base64_json.loads_decoding_base64(
        buffer, frozenset({"b64_json"}), min_chars=SMALL, start=start, end=start + len(inner)
    )
    value = got["b64_json"]
    if isinstance(value, base64_json.DecodedBase64):
        assert value.data == noise and bytes(value.text) == base64.b64encode(noise)
        assert value.text.obj is buffer  # a view of the buffer, not a copy
        value = bytes(value.text).decode()
    assert {**got, "b64_json": value} == orjson.loads(inner)
