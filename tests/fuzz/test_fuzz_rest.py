"""Fuzzing the REST shim: any body and headers get a clean answer, never a 5xx, never a hang.

The gateway's upstreams are healthy emulators and every routed request reaches one of them (or is
refused before any call), so a 5xx could only be the gateway's own fault. Errors must come in
OpenAI's envelope with all four keys and ``x-should-retry: false``; successes carry images.
"""

from __future__ import annotations

import json
from functools import partial

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.budget import cases
from tests.fuzz.choosers import RandomChooser
from tests.fuzz.in_process import Answer, InProcessRest
from tests.fuzz.rest_inputs import RestContext, RestRequest, rest_request
from tests.fuzz.strategies import drawn, first_failure

BATCH = 20
ENVELOPE_KEYS = {"message", "type", "param", "code"}


def check_answer(request: RestRequest, answer: Answer) -> None:
    assert answer.status < 500, f"{answer.status}: {answer.body[:500]!r}"
    payload = json.loads(answer.body)
    if answer.status == 200:
        assert payload["data"], "a 200 carries images"
        for item in payload["data"]:
            assert item.get("b64_json") or item.get("url")
        return
    assert 400 <= answer.status < 500
    error = payload["error"]
    assert ENVELOPE_KEYS <= set(error), error
    assert isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["type"], str) and error["type"], error
    assert error["param"] is None or isinstance(error["param"], str), error
    assert error["code"] is None or isinstance(error["code"], str), error
    assert answer.headers.get("x-should-retry") == "false"


def send(rest_app: InProcessRest, request: RestRequest) -> None:
    check_answer(request, rest_app.post(request.headers, request.body))


def raw(headers: dict[str, str], body: bytes) -> RestRequest:
    return RestRequest(tuple((k.encode(), v.encode("latin-1")) for k, v in headers.items()), body)


@cases(2_500)
@given(data=st.data())
def test_fuzzed_requests_get_a_clean_answer(
    rest_app: InProcessRest, rest_context: RestContext, data: st.DataObject
) -> None:
    # Drawn inside the test: the generator needs the package fixtures.
    send(rest_app, data.draw(drawn(partial(rest_request, ctx=rest_context)), label="request"))


@cases(350)
@given(seed=st.integers(0, 2**64 - 1))
def test_bulk_fuzzed_requests_get_a_clean_answer(rest_app: InProcessRest, rest_context: RestContext, seed: int) -> None:
    chooser = RandomChooser(seed)
    first_failure([rest_request(chooser, rest_context) for _ in range(BATCH)], partial(send, rest_app))


def test_known_hard_inputs_get_a_clean_answer(rest_app: InProcessRest, rest_context: RestContext) -> None:
    base = {
        "x-portkey-api-key": rest_context.admin_key,
        "x-portkey-virtual-key": rest_context.targets.openai_vk,
        "content-type": "application/json",
    }
    for headers, body in [
        (base, b"[" * 100_000),
        (base, b'{"prompt": null}'),
        (base, b'{"prompt": "a", "n": Infinity}'),
        (base, b'{"prompt": "a", "steps": Infinity, "model": "stable-diffusion-v1-6"}'),
        (base, b'{"prompt": "a", "n": NaN}'),
        (base, b'{"prompt": "a", "seed": -Infinity}'),
        (base, b'{"prompt": "a", "cfg_scale": NaN, "model": "sd3"}'),
        ({**base, "x-portkey-metadata": "[" * 1500}, b'{"prompt": "a"}'),
        ({**base, "x-portkey-config": '{"targets":[' * 1200}, b'{"prompt": "a"}'),
        ({**base, "x-portkey-request-timeout": "\xb2"}, b'{"prompt": "a"}'),
    ]:
        send(rest_app, raw(headers, body))
