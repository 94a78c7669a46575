"""Bad-input limits, set through settings, enforced on both front ends with the field named.

The module runs its own gateway with small limits (so a test can cross each one cheaply and prove the
setting, not a constant, decides); the boundary value itself is served by the emulators.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import ImageGatewayClient, ImageGatewayError
from imagegateway.v1 import images_pb2, service_pb2_grpc
from tests.conftest import OPENAI_SECRET, Emulators
from tests.emulators import OpenAIEmulator
from tests.harness import GatewayThread, running_gateway

GENERATIONS = "/images/generations"
LIMITS = {
    "max_body_bytes": 4096,
    "max_prompt_chars": 50,
    "max_config_depth": 2,
    "max_targets": 3,
    "max_metadata_bytes": 64,
    "max_images": 3,
}
VK = "input-limits-openai"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory, openai_emulator: OpenAIEmulator) -> Iterator[GatewayThread]:
    with running_gateway(tmp_path_factory.mktemp("small-limits"), **LIMITS) as gateway:
        with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
            admin.create_virtual_key(VK, "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
        yield gateway


@pytest.fixture
def rest(small: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=small.rest_base_url, timeout=30.0, headers={"x-portkey-api-key": small.admin_key}
    ) as client:
        yield client


@pytest.fixture
def grpc_client(small: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(small.grpc_target, api_key=small.admin_key) as client:
        yield client


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a lighthouse", "model": "dall-e-3", "response_format": "b64_json", **fields}


def post(rest: httpx.Client, payload: Any = None, **headers: str) -> httpx.Response:
    routing = {} if "x-portkey-config" in headers else {"x-portkey-virtual-key": VK}
    return rest.post(GENERATIONS, json=body() if payload is None else payload, headers={**routing, **headers})


def rest_refusal(response: httpx.Response, status: int, param: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["x-should-retry"] == "false"
    error: dict[str, Any] = response.json()["error"]
    assert error["param"] == param, error
    return error


def grpc_refusal(call: Any, param: str) -> ImageGatewayError:
    with pytest.raises(ImageGatewayError) as info:
        call()
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.error_info is not None and info.value.error_info.metadata["param"] == param
    return info.value


def nested(depth: int) -> dict[str, Any]:
    config: dict[str, Any] = {"virtual_key": VK}
    for _ in range(depth):
        config = {"strategy": {"mode": "fallback"}, "targets": [config]}
    return config


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(rest: httpx.Client, emulators: Emulators) -> None:
    large = body(user="u" * 5000)
    error = rest_refusal(post(rest, large), 413, "body")
    assert error["code"] == "payload_too_large" and "4096 bytes" in error["message"]

    def chunks() -> Iterator[bytes]:  # no content-length: the size is counted as it arrives
        data = json.dumps(large).encode()
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    streamed = rest.post(
        GENERATIONS, content=chunks(), headers={"content-type": "application/json", "x-portkey-virtual-key": VK}
    )
    rest_refusal(streamed, 413, "body")
    assert emulators.openai.requests == []


def test_the_prompt_limit(rest: httpx.Client, grpc_client: ImageGatewayClient, emulators: Emulators) -> None:
    assert post(rest, body(prompt="p" * 50)).status_code == 200
    error = rest_refusal(post(rest, body(prompt="p" * 51)), 400, "prompt")
    assert "50 characters" in error["message"]
    grpc_refusal(lambda: grpc_client.generate_image(prompt="p" * 51, virtual_key=VK), "prompt")


def test_the_image_count_limit(rest: httpx.Client, grpc_client: ImageGatewayClient, emulators: Emulators) -> None:
    served = post(rest, body(n=3))
    assert served.status_code == 200 and len(served.json()["data"]) == 3
    error = rest_refusal(post(rest, body(n=4)), 400, "n")
    assert "between 1 and 3" in error["message"]
    grpc_refusal(lambda: grpc_client.generate_image(prompt="a kite", n=4, virtual_key=VK), "n")


def test_the_config_depth_limit(rest: httpx.Client, grpc_client: ImageGatewayClient, emulators: Emulators) -> None:
    assert post(rest, **{"x-portkey-config": json.dumps(nested(2))}).status_code == 200
    too_deep = nested(3)
    path = "targets[0].targets[0].targets[0]"
    error = rest_refusal(post(rest, **{"x-portkey-config": json.dumps(too_deep)}), 400, path)
    assert "deeper than 2" in error["message"]
    grpc_refusal(lambda: grpc_client.generate_image(prompt="a kite", config=too_deep), path)
    grpc_refusal(lambda: grpc_client.create_config("too-deep", too_deep), path)


def test_the_target_count_limit_covers_nested_targets(
    rest: httpx.Client, grpc_client: ImageGatewayClient, emulators: Emulators
) -> None:
    target = {"virtual_key": VK}
    three = {"strategy": {"mode": "fallback"}, "targets": [target] * 3}
    assert post(rest, **{"x-portkey-config": json.dumps(three)}).status_code == 200
    four = {
        "strategy": {"mode": "fallback"},
        "targets": [target, {"strategy": {"mode": "fallback"}, "targets": [target] * 2}, target],
    }
    error = rest_refusal(post(rest, **{"x-portkey-config": json.dumps(four)}), 400, "targets[1].targets")
    assert "at most 3 targets" in error["message"]
    grpc_refusal(lambda: grpc_client.create_config("too-many", four), "targets[1].targets")


def test_the_metadata_limit(rest: httpx.Client, grpc_client: ImageGatewayClient, emulators: Emulators) -> None:
    fits = {"team": "web", "tier": "gold"}
    assert post(rest, **{"x-portkey-metadata": json.dumps(fits)}).status_code == 200
    too_much = {"team": "w" * 40, "tier": "g" * 20}
    rest_refusal(post(rest, **{"x-portkey-metadata": json.dumps(too_much)}), 400, "x-portkey-metadata")
    assert grpc_client.generate_image(prompt="a kite", virtual_key=VK, metadata=fits).images
    grpc_refusal(lambda: grpc_client.generate_image(prompt="a kite", virtual_key=VK, metadata=too_much), "metadata")


def test_trace_ids_are_capped_and_a_refused_one_is_not_echoed(
    rest: httpx.Client, grpc_client: ImageGatewayClient, small: GatewayThread, emulators: Emulators
) -> None:
    fits = "t" * 128
    served = post(rest, **{"x-portkey-trace-id": fits})
    assert served.status_code == 200 and served.headers["x-portkey-trace-id"] == fits
    refused = post(rest, **{"x-portkey-trace-id": "t" * 129})
    error = rest_refusal(refused, 400, "x-portkey-trace-id")
    assert "128 characters" in error["message"]
    assert len(refused.headers["x-portkey-trace-id"]) == 32  # a fresh id, not the caller's
    assert len(emulators.openai.requests) == 1  # the refused request went nowhere

    grpc_refusal(lambda: grpc_client.generate_image(prompt="a kite", virtual_key=VK, trace_id="t" * 129), "trace_id")
    grpc_refusal(
        lambda: grpc_client.generate_image(prompt="a kite", virtual_key=VK, trace_id="line\nbreak"), "trace_id"
    )
    channel = grpc.insecure_channel(small.grpc_target)
    try:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        request = images_pb2.GenerateImageRequest(
            parameters=images_pb2.ImageParameters(prompt="a kite"), routing=images_pb2.Routing(virtual_key=VK)
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.GenerateImage(
                request,
                metadata=(("authorization", f"Bearer {small.admin_key}"), ("x-portkey-trace-id", "m" * 129)),
                timeout=30,
            )
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "x-portkey-trace-id" in (info.value.details() or "")
    finally:
        channel.close()


def test_the_defaults_hold_on_a_gateway_without_settings(
    gateway: GatewayThread, seed: Any, emulators: Emulators
) -> None:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=30.0) as client:
        headers = {"x-portkey-api-key": gateway.admin_key, "x-portkey-virtual-key": seed.openai_vk}
        rest_refusal(client.post(GENERATIONS, json=body(n=11), headers=headers), 400, "n")
        rest_refusal(client.post(GENERATIONS, json=body(prompt="p" * 32_001), headers=headers), 400, "prompt")
        metadata = json.dumps({"k": "v" * 8200})
        rest_refusal(
            client.post(GENERATIONS, json=body(), headers={**headers, "x-portkey-metadata": metadata}),
            400,
            "x-portkey-metadata",
        )
    assert emulators.openai.requests == []


@pytest.mark.parametrize("field", ["prompt", "user", "negative_prompt"])
def test_a_lone_surrogate_in_a_rest_string_is_a_400_naming_the_field(rest: httpx.Client, field: str) -> None:
    # JSON may spell a lone UTF-16 surrogate ("\ud800"); no provider, log or gRPC string can carry it.
    raw = json.dumps(body(**{field: "a lighthouse \ud800"})).encode()
    response = rest.post(
        GENERATIONS, content=raw, headers={"x-portkey-virtual-key": VK, "content-type": "application/json"}
    )
    rest_refusal(response, 400, field)


def test_a_lone_surrogate_in_rest_metadata_is_a_400_naming_the_header(rest: httpx.Client) -> None:
    response = post(rest, **{"x-portkey-metadata": '{"tier": "gold \\ud800"}'})
    rest_refusal(response, 400, "x-portkey-metadata")


def test_a_lone_surrogate_in_an_inline_config_is_a_400(rest: httpx.Client) -> None:
    response = post(rest, **{"x-portkey-config": '{"virtual_key": "vk-\\ud800"}'})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"].startswith("x-portkey-config"), response.text


def test_a_keep_image_header_that_is_not_true_or_false_is_a_400(rest: httpx.Client, emulators: Emulators) -> None:
    before = len(emulators.openai.requests)
    response = post(rest, **{"x-imagegw-keep-image": "please"})
    rest_refusal(response, 400, "x-imagegw-keep-image")
    assert len(emulators.openai.requests) == before  # refused before any upstream call
