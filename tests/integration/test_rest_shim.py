"""The OpenAI-compatible REST shim over real sockets: OpenAI's bodies, envelope and statuses, Portkey's headers.

Every test talks to the session's gateway (a real process in a thread) with httpx or the openai SDK,
and the gateway talks to the OpenAI and Stability emulators. Faults are injected per test and the
emulators are reset around each one (``emulators`` fixture).
"""

from __future__ import annotations

import base64
import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from imagegateway import ImageGatewayClient
from imagegateway.v1 import images_pb2, logs_pb2
from tests.conftest import (
    COOKBOOK_CONFIG,
    OPENAI_SECRET,
    STABILITY_SECRET,
    Emulators,
    Seed,
    eventually,
)
from tests.emulators import Fault
from tests.harness import GatewayThread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENVELOPE_KEYS = {"message", "type", "param", "code"}
GENERATIONS = "/images/generations"
HTTP_TIMEOUT = 30.0


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> tuple[str, str]:
    """A `generate`-scope gateway key for this module: (key id, plaintext)."""
    created = admin.create_api_key(f"rest-shim-{uuid.uuid4().hex[:6]}", "generate")
    return created.api_key.id, created.key


@pytest.fixture
def rest(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def auth(key: tuple[str, str], **headers: str) -> dict[str, str]:
    return {"x-portkey-api-key": key[1], **headers}


def cookbook(key: tuple[str, str], seed: Seed, **headers: str) -> dict[str, str]:
    return auth(key, **{"x-portkey-config": seed.config_id, **headers})


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a lighthouse at dusk", "response_format": "b64_json", **fields}


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def png_from_b64(value: str) -> bytes:
    data = base64.b64decode(value, validate=True)
    assert data.startswith(PNG_SIGNATURE)
    return data


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenAI error object of a failed response, after checking what every error must carry."""
    assert response.status_code == status, response.text
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert "data" not in payload, "an error must never look like a success"
    error: dict[str, Any] = payload["error"]
    assert ENVELOPE_KEYS <= error.keys(), error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    return error


def log_of(admin: ImageGatewayClient, trace_id: str) -> logs_pb2.RequestLog:
    """The request log record of ``trace_id`` once the batched writer has stored it."""
    return eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))


def inline(config: dict[str, Any]) -> str:
    return json.dumps(config, separators=(",", ":"))


def fallback_config(seed: Seed, **first_target: Any) -> dict[str, Any]:
    """The cookbook chain with extra settings on its first (Stability) target."""
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"virtual_key": seed.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}, **first_target},
            {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-3"}},
        ],
    }


def assert_fell_back_to_dall_e_3(
    response: httpx.Response,
    emulators: Emulators,
    admin: ImageGatewayClient,
    trace_id: str,
    *,
    first_status: int,
    first_kind: images_pb2.ErrorKind.ValueType,
) -> logs_pb2.RequestLog:
    """The Stability attempt failed as expected and DALL-E 3 served the request."""
    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert response.headers["x-portkey-provider"] == "openai"
    assert response.headers["x-portkey-trace-id"] == trace_id
    data = response.json()["data"]
    assert len(data) == 1
    png_from_b64(data[0]["b64_json"])
    assert data[0]["revised_prompt"]  # DALL-E 3's answer, not Stability's
    assert len(emulators.stability.requests) == 1
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["dall-e-3"]
    record = log_of(admin, trace_id)
    assert record.fallback_used
    assert record.status_code == 200
    assert [(a.target, a.provider, a.status_code) for a in record.attempts] == [
        ("config.targets[0]", "stability-ai", first_status),
        ("config.targets[1]", "openai", 200),
    ]
    assert record.attempts[0].error_kind == first_kind
    assert record.attempts[0].error
    assert record.attempts[1].error_kind == images_pb2.ERROR_KIND_UNSPECIFIED
    return record


# -- success paths ----------------------------------------------------------------------------------


def test_virtual_key_with_portkey_provider_spelling_serves_png_and_canonical_provider_header(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    headers = auth(generate_key, **{"x-portkey-virtual-key": seed.stability_vk, "x-portkey-provider": "stabilityai"})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    payload = response.json()
    assert isinstance(payload["created"], int)
    assert len(payload["data"]) == 1
    png_from_b64(payload["data"][0]["b64_json"])
    assert response.headers["x-portkey-provider"] == "stability-ai"
    sent = emulators.stability.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {STABILITY_SECRET}"


def test_saved_config_id_header_serves_from_the_first_target(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    png_from_b64(response.json()["data"][0]["b64_json"])
    assert response.headers["x-portkey-provider"] == "stability-ai"
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert emulators.stability.requests[-1].path == "/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert emulators.openai.requests == []


def test_inline_json_config_header_routes_through_virtual_keys(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    config = {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-3"}}
    response = rest.post(GENERATIONS, json=body(), headers=auth(generate_key, **{"x-portkey-config": inline(config)}))

    assert response.status_code == 200, response.text
    png_from_b64(response.json()["data"][0]["b64_json"])
    assert response.headers["x-portkey-provider"] == "openai"
    sent = emulators.openai.requests[-1]
    assert sent.json is not None and sent.json["model"] == "dall-e-3"
    assert sent.headers["authorization"] == f"Bearer {OPENAI_SECRET}"


def test_inline_config_with_the_cookbook_json_falls_back_like_the_saved_one(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.status(503))
    trace_id = unique("inline-cookbook")
    headers = auth(generate_key, **{"x-portkey-config": inline(COOKBOOK_CONFIG), "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=503, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )


def test_bare_provider_passes_the_bearer_provider_key_through(
    rest: httpx.Client, generate_key: tuple[str, str], emulators: Emulators
) -> None:
    headers = auth(
        generate_key,
        **{
            "x-portkey-provider": "openai",
            "authorization": f"Bearer {OPENAI_SECRET}",
            "x-portkey-custom-host": emulators.openai.base_url,
        },
    )
    response = rest.post(GENERATIONS, json=body(model="dall-e-2", size="256x256"), headers=headers)

    assert response.status_code == 200, response.text
    png_from_b64(response.json()["data"][0]["b64_json"])
    assert response.headers["x-portkey-provider"] == "openai"
    sent = emulators.openai.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {OPENAI_SECRET}"
    assert sent.json is not None and sent.json["model"] == "dall-e-2"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer igw_not_a_provider_key_0123456789abcdef"],
    ids=["no_authorization", "gateway_key_in_authorization"],
)
def test_bare_provider_without_a_provider_key_is_a_400_naming_the_key(
    rest: httpx.Client, generate_key: tuple[str, str], emulators: Emulators, authorization: str | None
) -> None:
    headers = auth(generate_key, **{"x-portkey-provider": "openai", "x-portkey-custom-host": emulators.openai.base_url})
    if authorization:
        headers["authorization"] = authorization
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    error = error_of(response, 400)
    assert error["param"] == "authorization"
    assert "api key" in error["message"].lower()
    assert error["type"] == "invalid_request_error"
    assert emulators.openai.requests == []


def test_url_response_format_through_stability_answers_a_data_url(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json=body(response_format="url"), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    item = response.json()["data"][0]
    assert "b64_json" not in item
    prefix = "data:image/png;base64,"
    assert item["url"].startswith(prefix)
    png_from_b64(item["url"][len(prefix) :])


def test_url_response_format_is_the_default_as_in_openai(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json={"prompt": "a lighthouse"}, headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["url"].startswith("data:image/png;base64,")


def test_n_images_come_back_as_n_items(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json=body(n=2), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert len(data) == 2
    for item in data:
        png_from_b64(item["b64_json"])
    assert emulators.stability.requests[-1].json["samples"] == 2  # type: ignore[index]


# -- response headers -------------------------------------------------------------------------------


def test_trace_id_header_echoes_the_one_sent(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    trace_id = unique("echo")
    headers = cookbook(generate_key, seed, **{"x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-trace-id"] == trace_id


def test_trace_id_header_is_generated_when_none_is_sent(
    rest: httpx.Client,
    generate_key: tuple[str, str],
    seed: Seed,
    emulators: Emulators,
    admin: ImageGatewayClient,
) -> None:
    first = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))
    second = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    assert first.status_code == second.status_code == 200
    generated = first.headers["x-portkey-trace-id"]
    assert generated and generated != second.headers["x-portkey-trace-id"]
    assert log_of(admin, generated).transport == "rest"


def test_success_headers_report_target_retries_and_cache_status(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert response.headers["x-portkey-retry-attempt-count"] == "0"
    assert response.headers["x-portkey-cache-status"] == "DISABLED"  # no cache configured
    assert response.headers["x-portkey-provider"] == "stability-ai"


def test_retry_attempt_count_header_counts_retries_on_the_serving_target(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    config = fallback_config(seed, retry={"attempts": 2, "on_status_codes": [503]})
    emulators.stability.inject(Fault.status(503), times=1)
    response = rest.post(GENERATIONS, json=body(), headers=auth(generate_key, **{"x-portkey-config": inline(config)}))

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-retry-attempt-count"] == "1"
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert response.headers["x-portkey-provider"] == "stability-ai"
    assert len(emulators.stability.requests) == 2
    assert emulators.openai.requests == []


def test_exhausted_retries_answer_retry_attempt_count_minus_one(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    config = {
        "virtual_key": seed.stability_vk,
        "retry": {"attempts": 1, "on_status_codes": [503]},
        "override_params": {"model": "stable-diffusion-v1-6"},
    }
    emulators.stability.inject(Fault.status(503), times=2)
    response = rest.post(GENERATIONS, json=body(), headers=auth(generate_key, **{"x-portkey-config": inline(config)}))

    error_of(response, 503)
    assert response.headers["x-portkey-retry-attempt-count"] == "-1"
    assert len(emulators.stability.requests) == 2


def test_retry_honours_retry_after_ms_and_serves_from_the_same_target(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    config = fallback_config(seed, retry={"attempts": 1, "on_status_codes": [429]})
    emulators.stability.inject(Fault.rate_limited(retry_after_ms=150))
    trace_id = unique("retry-after")
    headers = auth(generate_key, **{"x-portkey-config": inline(config), "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-retry-attempt-count"] == "1"
    assert response.headers["x-portkey-provider"] == "stability-ai"
    record = log_of(admin, trace_id)
    assert [(a.target, a.status_code, a.retry_index) for a in record.attempts] == [
        ("config.targets[0]", 429, 0),
        ("config.targets[0]", 200, 1),
    ]
    assert not record.fallback_used


def test_strategy_on_status_codes_limits_which_failures_fall_back(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    config = {**fallback_config(seed), "strategy": {"mode": "fallback", "on_status_codes": [429]}}
    headers = auth(generate_key, **{"x-portkey-config": inline(config)})

    emulators.stability.inject(Fault.status(503))
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 503)
    assert [a["target"] for a in error["attempts"]] == ["config.targets[0]"]
    assert emulators.openai.requests == []

    emulators.stability.inject(Fault.rate_limited())
    response = rest.post(GENERATIONS, json=body(), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"


def test_pinned_config_version_header_uses_that_version(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    saved = admin.create_config(
        unique("pinned"), {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-2"}}
    )
    admin.update_config(saved.id, {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-3"}})

    latest = rest.post(GENERATIONS, json=body(), headers=auth(generate_key, **{"x-portkey-config": saved.id}))
    pinned = rest.post(GENERATIONS, json=body(), headers=auth(generate_key, **{"x-portkey-config": f"{saved.id}@1"}))
    assert latest.headers["x-imagegw-model"] == "dall-e-3"
    assert pinned.headers["x-imagegw-model"] == "dall-e-2"
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["dall-e-3", "dall-e-2"]


# -- each failure kind moves the cookbook fallback on to DALL-E 3 -----------------------------------


def _cookbook_with_fault(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, fault: Fault
) -> tuple[httpx.Response, str]:
    emulators.stability.inject(fault)
    trace_id = unique("fault")
    response = rest.post(
        GENERATIONS, json=body(), headers=cookbook(generate_key, seed, **{"x-portkey-trace-id": trace_id})
    )
    return response, trace_id


def test_fallback_moves_on_after_upstream_5xx(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.status(503))
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=503, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )


def test_fallback_moves_on_after_upstream_500(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.status(500))
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=500, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )


def test_fallback_moves_on_after_429_with_retry_after(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.rate_limited(retry_after=1))
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=429, first_kind=images_pb2.ERROR_KIND_RATE_LIMITED
    )
    assert "retry-after" not in response.headers  # served: the caller has nothing to wait for


def test_fallback_skips_target_after_connection_reset(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.reset())
    record = assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )
    assert STABILITY_SECRET not in record.attempts[0].error


def test_fallback_moves_on_after_non_json_body(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.malformed())
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UPSTREAM_BUG
    )


def test_fallback_moves_on_after_non_json_error_body(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    fault = Fault.status(502, body="<html><body>502 Bad Gateway</body></html>")
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, fault)
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )


def test_fallback_moves_on_after_truncated_body(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.truncated())
    record = assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UNAVAILABLE
    )
    assert "truncated" in record.attempts[0].error


def test_fallback_moves_on_after_empty_body(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.empty())
    record = assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UPSTREAM_BUG
    )
    assert "empty" in record.attempts[0].error


def test_fallback_moves_on_after_per_attempt_timeout_recorded_as_408(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    saved = admin.create_config(unique("timeout"), fallback_config(seed, request_timeout=300))
    emulators.stability.inject(Fault.hang())
    trace_id = unique("timeout")
    headers = auth(generate_key, **{"x-portkey-config": saved.id, "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=408, first_kind=images_pb2.ERROR_KIND_TIMEOUT
    )


def test_fallback_moves_on_after_slow_upstream_exceeds_request_timeout(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.latency(5_000))
    trace_id = unique("slow")
    config = fallback_config(seed, request_timeout=300)
    headers = auth(generate_key, **{"x-portkey-config": inline(config), "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=408, first_kind=images_pb2.ERROR_KIND_TIMEOUT
    )


def test_content_filtered_stability_image_is_never_served_and_falls_back(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(rest, generate_key, seed, emulators, Fault.content_filter())
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=400, first_kind=images_pb2.ERROR_KIND_CONTENT_POLICY
    )


def test_fallback_moves_on_after_connect_error_to_a_closed_port(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    config = fallback_config(seed, custom_host=f"http://127.0.0.1:{closed_port()}")
    trace_id = unique("refused")
    headers = auth(generate_key, **{"x-portkey-config": inline(config), "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert emulators.stability.requests == []  # the first target never reached anything
    record = log_of(admin, trace_id)
    assert record.fallback_used
    assert [(a.provider, a.status_code) for a in record.attempts] == [("stability-ai", 502), ("openai", 200)]
    assert record.attempts[0].error_kind == images_pb2.ERROR_KIND_UNAVAILABLE
    assert "refused" in record.attempts[0].error


# -- every target failed ----------------------------------------------------------------------------


def test_all_targets_503_answers_503_with_every_attempt(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    trace_id = unique("all-503")
    headers = cookbook(generate_key, seed, **{"x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    error = error_of(response, 503)
    assert error["type"] == "service_unavailable_error"
    assert "openai" in error["message"]  # the last target's meaning
    assert [(a["target"], a["provider"], a["model"], a["status_code"], a["error_kind"]) for a in error["attempts"]] == [
        ("config.targets[0]", "stability-ai", "stable-diffusion-v1-6", 503, "UNAVAILABLE"),
        ("config.targets[1]", "openai", "dall-e-3", 503, "UNAVAILABLE"),
    ]
    assert all(a["error"] for a in error["attempts"])
    assert response.headers["x-portkey-trace-id"] == trace_id


def test_all_targets_failed_with_content_policy_last_answers_400_content_policy_violation(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.content_filter())
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    error = error_of(response, 400)
    assert error["code"] == "content_policy_violation"
    assert error["type"] == "invalid_request_error"
    assert [a["status_code"] for a in error["attempts"]] == [503, 400]
    assert error["attempts"][-1]["error_kind"] == "CONTENT_POLICY"


def test_all_targets_failed_with_malformed_body_last_answers_502(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.malformed())
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    error = error_of(response, 502)
    assert [a["status_code"] for a in error["attempts"]] == [503, 502]
    assert error["attempts"][-1]["error_kind"] == "UPSTREAM_BUG"


def test_all_targets_failed_with_rate_limit_last_answers_429_with_retry_after(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(500))
    emulators.openai.inject(Fault.rate_limited(retry_after=7))
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    error = error_of(response, 429)
    assert error["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "7"
    assert [a["status_code"] for a in error["attempts"]] == [500, 429]


def test_single_target_failure_still_lists_its_attempt(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.empty())
    headers = auth(generate_key, **{"x-portkey-virtual-key": seed.stability_vk})
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    error = error_of(response, 502)
    assert len(error["attempts"]) == 1
    assert error["attempts"][0]["provider"] == "stability-ai"


def test_upstream_200_without_images_is_never_a_200_to_the_caller(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(200, body={"artifacts": []}))
    emulators.openai.inject(Fault.status(200, body={"created": 1700000000, "data": []}))
    response = rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed))

    error = error_of(response, 502)
    assert [(a["status_code"], a["error_kind"]) for a in error["attempts"]] == [
        (502, "UPSTREAM_BUG"),
        (502, "UPSTREAM_BUG"),
    ]


def test_fallback_moves_on_after_a_200_without_images(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    response, trace_id = _cookbook_with_fault(
        rest, generate_key, seed, emulators, Fault.status(200, body={"artifacts": []})
    )
    assert_fell_back_to_dall_e_3(
        response, emulators, admin, trace_id, first_status=502, first_kind=images_pb2.ERROR_KIND_UPSTREAM_BUG
    )


def test_provider_refusing_the_bare_provider_key_is_401_without_echoing_it(
    rest: httpx.Client, generate_key: tuple[str, str], emulators: Emulators
) -> None:
    wrong = "sk-test-wrong-provider-key-4242424242"
    headers = auth(
        generate_key,
        **{
            "x-portkey-provider": "openai",
            "authorization": f"Bearer {wrong}",
            "x-portkey-custom-host": emulators.openai.base_url,
        },
    )
    response = rest.post(GENERATIONS, json=body(), headers=headers)

    error = error_of(response, 401)
    assert error["type"] == "authentication_error"
    assert wrong not in response.text
    assert wrong[-10:] not in response.text


def test_n_above_one_is_fanned_out_when_the_fallback_is_dall_e_3(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    response = rest.post(GENERATIONS, json=body(n=2), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 2
    assert [r.json["n"] for r in emulators.openai.requests if r.json] == [1, 1]


# -- bad input ------------------------------------------------------------------------------------


def test_missing_gateway_key_is_401(rest: httpx.Client, seed: Seed, emulators: Emulators) -> None:
    response = rest.post(GENERATIONS, json=body(), headers={"x-portkey-config": seed.config_id})

    error = error_of(response, 401)
    assert error["type"] == "authentication_error"
    assert emulators.stability.requests == []


def test_wrong_gateway_key_is_401_without_echoing_it(rest: httpx.Client, seed: Seed, emulators: Emulators) -> None:
    wrong = "igw_this_key_does_not_exist_0123456789abcdef"
    response = rest.post(
        GENERATIONS, json=body(), headers={"x-portkey-api-key": wrong, "x-portkey-config": seed.config_id}
    )

    error_of(response, 401)
    assert wrong not in response.text
    assert emulators.stability.requests == []


def test_revoked_gateway_key_is_401(
    rest: httpx.Client, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    created = admin.create_api_key(unique("to-revoke"), "generate")
    headers = {"x-portkey-api-key": created.key, "x-portkey-config": seed.config_id}
    assert rest.post(GENERATIONS, json=body(), headers=headers).status_code == 200

    admin.revoke_api_key(created.api_key.id)
    error_of(rest.post(GENERATIONS, json=body(), headers=headers), 401)


def test_gateway_key_is_also_accepted_as_x_imagegw_api_key(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    headers = {"x-imagegw-api-key": generate_key[1], "x-portkey-config": seed.config_id}
    assert rest.post(GENERATIONS, json=body(), headers=headers).status_code == 200


def test_non_json_content_type_is_415(rest: httpx.Client, generate_key: tuple[str, str], seed: Seed) -> None:
    response = rest.post(
        GENERATIONS,
        content=b"prompt=a+cat",
        headers=cookbook(generate_key, seed, **{"content-type": "application/x-www-form-urlencoded"}),
    )

    error_of(response, 415)


def test_non_json_body_is_400(rest: httpx.Client, generate_key: tuple[str, str], seed: Seed) -> None:
    response = rest.post(
        GENERATIONS, content=b"{not json", headers=cookbook(generate_key, seed, **{"content-type": "application/json"})
    )

    error = error_of(response, 400)
    assert error["type"] == "invalid_request_error"


def test_json_body_that_is_not_an_object_is_400(rest: httpx.Client, generate_key: tuple[str, str], seed: Seed) -> None:
    error_of(rest.post(GENERATIONS, json=["a cat"], headers=cookbook(generate_key, seed)), 400)


def test_missing_prompt_is_400_naming_prompt(rest: httpx.Client, generate_key: tuple[str, str], seed: Seed) -> None:
    error = error_of(rest.post(GENERATIONS, json={"n": 1}, headers=cookbook(generate_key, seed)), 400)
    assert error["param"] == "prompt"


def test_empty_prompt_is_400_naming_prompt(rest: httpx.Client, generate_key: tuple[str, str], seed: Seed) -> None:
    error = error_of(rest.post(GENERATIONS, json={"prompt": "  "}, headers=cookbook(generate_key, seed)), 400)
    assert error["param"] == "prompt"


def test_n_above_ten_is_400_naming_n(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    error = error_of(rest.post(GENERATIONS, json=body(n=11), headers=cookbook(generate_key, seed)), 400)
    assert error["param"] == "n"
    assert emulators.stability.requests == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("prompt", 42), ("n", "two"), ("n", 1.5), ("size", 1024), ("response_format", "png"), ("seed", True)],
)
def test_wrong_field_type_is_400_naming_the_field(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, field: str, value: object
) -> None:
    payload = {**body(), field: value}
    error = error_of(rest.post(GENERATIONS, json=payload, headers=cookbook(generate_key, seed)), 400)
    assert error["param"] == field
    assert emulators.stability.requests == []


def test_parameter_the_provider_cannot_honour_is_refused_naming_it(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    headers = auth(generate_key, **{"x-portkey-virtual-key": seed.stability_vk})
    error = error_of(rest.post(GENERATIONS, json=body(style="vivid"), headers=headers), 400)
    assert error["param"] == "style"
    assert emulators.stability.requests == []


def test_unknown_config_id_is_404(rest: httpx.Client, generate_key: tuple[str, str]) -> None:
    headers = auth(generate_key, **{"x-portkey-config": "pc-does-not-exist"})
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 404)
    assert "pc-does-not-exist" in error["message"]


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ('{"strategy": {"mode": "fallback"}, "targets": [', "x-portkey-config"),
        ('{"strategy": {"mode": "fallback"}, "targetz": []}', "targetz"),
        (
            '{"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b", '
            '"weight": "heavy"}]}',
            "targets[1].weight",
        ),
        (
            '{"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"strategy": {"mode": 3}, '
            '"targets": [{"virtual_key": "b"}]}]}',
            "targets[1].strategy.mode",
        ),
        ('{"strategy": {"mode": "roundrobin"}, "targets": [{"virtual_key": "a"}]}', "strategy.mode"),
        (
            '{"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"provider": "openai"}]}',
            "targets[1].api_key",
        ),
    ],
    ids=["not_json", "unknown_field", "bad_weight_type", "nested_mode_type", "unknown_mode", "missing_api_key"],
)
def test_malformed_inline_config_is_400_naming_the_field_path(
    rest: httpx.Client, generate_key: tuple[str, str], emulators: Emulators, config: str, param: str
) -> None:
    headers = auth(generate_key, **{"x-portkey-config": config})
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 400)
    assert error["param"] == param
    assert param in error["message"]
    assert emulators.stability.requests == [] and emulators.openai.requests == []


def test_inline_config_custom_host_outside_the_allow_list_is_400(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    config = {"virtual_key": seed.openai_vk, "custom_host": "http://10.20.30.40/v1"}
    headers = auth(generate_key, **{"x-portkey-config": inline(config)})
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 400)
    assert error["param"] == "custom_host"


def test_unknown_provider_is_400(rest: httpx.Client, generate_key: tuple[str, str]) -> None:
    headers = auth(generate_key, **{"x-portkey-provider": "midjourney", "authorization": "Bearer sk-abc"})
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 400)
    assert error["param"] == "provider"
    assert "midjourney" in error["message"]


def test_no_routing_header_is_400(rest: httpx.Client, generate_key: tuple[str, str]) -> None:
    error = error_of(rest.post(GENERATIONS, json=body(), headers=auth(generate_key)), 400)
    assert error["param"]


def test_unknown_virtual_key_is_404_naming_it(
    rest: httpx.Client, generate_key: tuple[str, str], emulators: Emulators
) -> None:
    headers = auth(generate_key, **{"x-portkey-virtual-key": "no-such-virtual-key"})
    error = error_of(rest.post(GENERATIONS, json=body(), headers=headers), 404)
    assert "no-such-virtual-key" in error["message"]
    assert emulators.stability.requests == [] and emulators.openai.requests == []


@pytest.mark.parametrize(
    "metadata", ['["not", "an", "object"]', "{broken", "x" * 9000], ids=["not_an_object", "not_json", "too_large"]
)
def test_bad_metadata_header_is_400_naming_it(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, metadata: str
) -> None:
    headers = cookbook(generate_key, seed, **{"x-portkey-metadata": metadata})
    response = rest.post(GENERATIONS, json=body(), headers=headers)
    assert error_of(response, 400)["param"] == "x-portkey-metadata"
    assert emulators.stability.requests == []


def test_unknown_route_and_wrong_method_answer_in_the_envelope(rest: httpx.Client) -> None:
    error_of(rest.post("/images/nope", json=body()), 404)
    error_of(rest.get(GENERATIONS), 405)


# -- the OpenAI SDK against the shim ----------------------------------------------------------------


def sdk(gateway: GatewayThread, key: tuple[str, str], **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=2,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key[1], **headers},
    )


def test_openai_sdk_generates_through_the_cookbook_config(
    gateway: GatewayThread, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    with sdk(gateway, generate_key, **{"x-portkey-config": seed.config_id}) as client:
        result = client.images.generate(prompt="a lighthouse", response_format="b64_json")

    assert result.data and len(result.data) == 1
    assert result.data[0].b64_json
    png_from_b64(result.data[0].b64_json)


def test_openai_sdk_may_carry_the_gateway_key_as_its_api_key(
    gateway: GatewayThread, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    client = openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key=generate_key[1],
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-config": seed.config_id},
    )
    with client:
        result = client.images.generate(prompt="a lighthouse", response_format="b64_json")
    assert result.data and result.data[0].b64_json
    # The gateway key is ours: it never travels on to a provider.
    assert emulators.stability.requests[-1].headers["authorization"] == f"Bearer {STABILITY_SECRET}"


def test_openai_sdk_does_not_retry_an_all_failed_503(
    gateway: GatewayThread,
    generate_key: tuple[str, str],
    seed: Seed,
    emulators: Emulators,
    admin: ImageGatewayClient,
) -> None:
    emulators.stability.inject(Fault.status(503), times=None)
    emulators.openai.inject(Fault.status(503), times=None)
    trace_id = unique("sdk-503")
    headers = {"x-portkey-config": seed.config_id, "x-portkey-trace-id": trace_id}
    with sdk(gateway, generate_key, **headers) as client, pytest.raises(openai.InternalServerError) as info:
        client.images.generate(prompt="a lighthouse", response_format="b64_json")

    assert info.value.status_code == 503
    assert info.value.response.headers["x-should-retry"] == "false"
    # One gateway request: one attempt per target, and one log record for the trace.
    assert len(emulators.stability.requests) == 1
    assert len(emulators.openai.requests) == 1
    log_of(admin, trace_id)
    assert len(admin.list_logs(trace_id=trace_id).logs) == 1


@pytest.mark.parametrize(
    ("headers", "payload", "error_class", "param"),
    [
        ({"x-portkey-api-key": "igw_wrong_key_0123456789abcdefghij"}, {}, openai.AuthenticationError, None),
        ({}, {"n": 11}, openai.BadRequestError, "n"),
        ({"x-portkey-config": "pc-missing"}, {}, openai.NotFoundError, None),
    ],
    ids=["wrong_key", "n_too_large", "unknown_config"],
)
def test_openai_sdk_error_classes_line_up_with_statuses(
    gateway: GatewayThread,
    generate_key: tuple[str, str],
    seed: Seed,
    emulators: Emulators,
    headers: dict[str, str],
    payload: dict[str, Any],
    error_class: type[openai.APIStatusError],
    param: str | None,
) -> None:
    with (
        sdk(gateway, generate_key, **{"x-portkey-config": seed.config_id, **headers}) as client,
        pytest.raises(error_class) as info,
    ):
        client.images.generate(prompt="a lighthouse", **payload)

    assert info.value.param == param
    assert info.value.response.headers["x-should-retry"] == "false"


def test_openai_sdk_content_policy_refusal_is_bad_request_with_its_code(
    gateway: GatewayThread, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.content_filter())
    emulators.openai.inject(Fault.content_filter())
    with (
        sdk(gateway, generate_key, **{"x-portkey-config": seed.config_id}) as client,
        pytest.raises(openai.BadRequestError) as info,
    ):
        client.images.generate(prompt="a lighthouse")

    assert info.value.code == "content_policy_violation"


# -- the request log ------------------------------------------------------------------------------


def test_request_log_holds_one_record_per_rest_request_with_attempts_and_fallback(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.status(503))
    trace_id = unique("log")
    headers = cookbook(
        generate_key,
        seed,
        **{"x-portkey-trace-id": trace_id, "x-portkey-metadata": json.dumps({"_user": "ada", "team": "art"})},
    )
    response = rest.post(GENERATIONS, json=body(prompt="a log-worthy lighthouse"), headers=headers)
    assert response.status_code == 200, response.text
    image = png_from_b64(response.json()["data"][0]["b64_json"])

    record = log_of(admin, trace_id)
    assert record.id == response.headers["x-imagegw-log-id"]
    assert record.transport == "rest"
    assert record.caller_key_id == generate_key[0]
    assert record.config_id == seed.config_id
    assert record.config_version == 1
    assert record.prompt == "a log-worthy lighthouse"
    assert dict(record.metadata) == {"_user": "ada", "team": "art"}
    assert record.status_code == 200
    assert (record.provider, record.model, record.served_target) == ("openai", "dall-e-3", "config.targets[1]")
    assert record.fallback_used
    assert [(a.provider, a.model, a.status_code) for a in record.attempts] == [
        ("stability-ai", "stable-diffusion-v1-6", 503),
        ("openai", "dall-e-3", 200),
    ]
    assert len(record.images) == 1
    assert record.images[0].mime_type == "image/png"
    assert record.images[0].bytes == len(image)

    # Records are written in order: once a later request's record is stored, so are all of ours.
    later = unique("log-later")
    rest.post(GENERATIONS, json=body(), headers=cookbook(generate_key, seed, **{"x-portkey-trace-id": later}))
    log_of(admin, later)
    assert len(admin.list_logs(trace_id=trace_id).logs) == 1


def test_request_log_records_a_failed_rest_request_once_with_every_attempt(
    rest: httpx.Client, generate_key: tuple[str, str], seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.reset())
    emulators.openai.inject(Fault.status(503))
    trace_id = unique("log-fail")
    headers = cookbook(generate_key, seed, **{"x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(), headers=headers)
    error_of(response, 503)

    record = log_of(admin, trace_id)
    assert record.id == response.headers["x-imagegw-log-id"]
    assert record.status_code == 503
    assert record.error_kind == images_pb2.ERROR_KIND_UNAVAILABLE
    assert record.error
    assert not record.fallback_used  # nothing served: no fallback (issue 14)
    assert [(a.provider, a.status_code) for a in record.attempts] == [("stability-ai", 502), ("openai", 503)]
    assert not record.images
