"""A coverage-guided atheris (libFuzzer) harness for the gateway's pure input parsing.

Each input's first byte picks a target, the rest is the input:

* config text or bytes -> ``parse_config`` + ``validate_config``: only InvalidArgument may escape;
* an images request body -> JSON -> ``rest_mapping.image_request`` + ``validate_request``;
* header values -> ``rest_mapping.metadata`` / ``routing_spec`` / ``cache_force_refresh`` and
  ``rest.request_deadline``.

Anything but InvalidArgument (or a body json refuses) is a crash, which libFuzzer reports with the
input that caused it. Run it bounded, as tests/fuzz/test_fuzz_atheris.py does in CI:

    python -m tests.fuzz.atheris_inputs -runs=100000 -max_total_time=20 [corpus_dir]
"""

from __future__ import annotations

import json
import sys

import atheris

with atheris.instrument_imports(include=["imagegateway_server", "imagegateway"]):
    from imagegateway_server.api import rest_mapping
    from imagegateway_server.api.config_json import parse_config
    from imagegateway_server.api.rest import request_deadline
    from imagegateway_server.domain.errors import InvalidArgument
    from imagegateway_server.domain.request import validate_request
    from imagegateway_server.routing.validation import validate_config

ALLOWED_HOSTS = ("127.0.0.1",)
# Seeds that start the search from real shapes rather than from nothing.
SEEDS = (
    b'\x00{"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"provider": "openai", '
    b'"api_key": "k", "custom_host": "http://127.0.0.1:9", "retry": {"attempts": 2}}]}',
    b'\x01{"prompt": "a cat", "model": "dall-e-3", "n": 2, "size": "1024x1024", "response_format": "b64_json"}',
    b'\x02{"tier": "gold", "n": 2}',
    b"\x0330000",
)


def _config(data: bytes) -> None:
    try:
        validate_config(parse_config(data), ALLOWED_HOSTS)
    except InvalidArgument:
        pass


def _body(data: bytes) -> None:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return  # the shim answers 400 before mapping (api/rest.py _read_json)
    try:
        validate_request(rest_mapping.image_request(body))
    except InvalidArgument:
        pass


def _headers(data: bytes) -> None:
    value = data.decode("latin-1")  # what Starlette hands the shim for any header bytes
    for call in (
        lambda: rest_mapping.metadata({"x-portkey-metadata": value}),
        lambda: rest_mapping.routing_spec({"x-portkey-config": value}),
        lambda: rest_mapping.routing_spec({"x-portkey-provider": value, "authorization": value}),
        lambda: rest_mapping.cache_force_refresh({"x-portkey-cache-force-refresh": value}),
        lambda: request_deadline(value, 0.0),
    ):
        try:
            call()
        except InvalidArgument:
            pass


_TARGETS = (_config, _body, _headers, _headers)


def test_one_input(data: bytes) -> None:
    if not data:
        return
    _TARGETS[data[0] % len(_TARGETS)](data[1:])


def main() -> None:
    corpus = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    for directory in corpus:
        for i, seed in enumerate(SEEDS):
            with open(f"{directory}/seed-{i}", "wb") as handle:
                handle.write(seed)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
