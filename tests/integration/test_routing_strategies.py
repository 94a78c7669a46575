"""Routing strategies and the overall deadline over real sockets, through the REST shim and gRPC alike.

Conditional configs route by the caller's metadata (REST ``x-portkey-metadata``, gRPC
``GenerateImageRequest.metadata``) and request params; weighted load balance never picks a zero
weight and, inside a fallback, moves on within its group; a caller's deadline
(``x-portkey-request-timeout`` or the gRPC deadline) bounds the whole chain.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import ImageGatewayClient, ImageGatewayError, InvalidArgumentError
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators, eventually
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway

GENERATIONS = "/images/generations"
HTTP_TIMEOUT = 30.0
# Far beyond any deadline below: a request that ends quickly was cut by the deadline, not answered.
SLOW_ENOUGH_TO_PROVE_A_CUT = 10.0


@dataclasses.dataclass(frozen=True)
class VirtualKeys:
    """This module's virtual keys, one per emulator."""

    stability_vk: str
    openai_vk: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    """A gateway of this module's own, with circuit breakers off (both triggers 0): these tests fail
    targets on purpose, and must neither trip breakers for other modules nor find them tripped."""
    with running_gateway(
        tmp_path_factory.mktemp("strategies"), breaker_consecutive_failures=0, breaker_failure_rate=0.0
    ) as running:
        yield running


@pytest.fixture(scope="module")
def admin(gateway: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as client:
        yield client


@pytest.fixture(scope="module")
def vks(
    admin: ImageGatewayClient, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> VirtualKeys:
    stability = admin.create_virtual_key(
        "strategies-stability", "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url
    )
    openai = admin.create_virtual_key("strategies-openai", "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
    return VirtualKeys(stability.id, openai.id)


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"strategies-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture
def rest(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def generator(gateway: GatewayThread, generate_key: str) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=generate_key, timeout=HTTP_TIMEOUT) as client:
        yield client


def post(
    rest: httpx.Client,
    key: str,
    config: dict[str, Any] | str,
    *,
    metadata: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {
        "x-portkey-api-key": key,
        "x-portkey-config": config if isinstance(config, str) else json.dumps(config),
        **headers,
    }
    if metadata is not None:
        sent["x-portkey-metadata"] = json.dumps(metadata)
    return rest.post(
        GENERATIONS, json={"prompt": "a lighthouse", "response_format": "b64_json", **(body or {})}, headers=sent
    )


def dalle(vks: VirtualKeys, **extra: Any) -> dict[str, Any]:
    return {"virtual_key": vks.openai_vk, "override_params": {"model": "dall-e-3"}, **extra}


def stable_diffusion(vks: VirtualKeys, **extra: Any) -> dict[str, Any]:
    return {"virtual_key": vks.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}, **extra}


def tiered(vks: VirtualKeys) -> dict[str, Any]:
    """Gold and platinum tiers, level 3 and up, or a caller asking for dall-e-3 get DALL-E; the rest get SD."""
    return {
        "strategy": {
            "mode": "conditional",
            "conditions": [
                {"query": {"metadata.tier": {"$in": ["gold", "platinum"]}}, "then": "dalle"},
                {"query": {"$or": [{"metadata.level": {"$gte": 3}}, {"params.model": "dall-e-3"}]}, "then": "dalle"},
            ],
            "default": "sd",
        },
        "targets": [dalle(vks, name="dalle"), stable_diffusion(vks, name="sd")],
    }


def served_by(emulators: Emulators) -> list[str]:
    return [
        name
        for name, emulator in (("openai", emulators.openai), ("stability", emulators.stability))
        if emulator.requests
    ]


@pytest.fixture(scope="module")
def tiered_config_id(admin: ImageGatewayClient, vks: VirtualKeys) -> str:
    return admin.create_config("tiered", tiered(vks)).id


# -- conditional --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "body", "provider", "target"),
    [
        ({"tier": "gold"}, {}, "openai", "config.targets[0]"),
        ({"tier": "free"}, {}, "stability-ai", "config.targets[1]"),
        ({"level": 5}, {}, "openai", "config.targets[0]"),  # a JSON number in the header compares as one
        ({"level": "2"}, {}, "stability-ai", "config.targets[1]"),
        (None, {}, "stability-ai", "config.targets[1]"),
        (None, {"model": "dall-e-3"}, "openai", "config.targets[0]"),
    ],
    ids=["gold", "free", "level_5", "level_2", "no_metadata", "params_model"],
)
def test_rest_conditional_config_routes_by_metadata_and_params(
    rest: httpx.Client,
    generate_key: str,
    tiered_config_id: str,
    emulators: Emulators,
    metadata: dict[str, Any] | None,
    body: dict[str, Any],
    provider: str,
    target: str,
) -> None:
    response = post(rest, generate_key, tiered_config_id, metadata=metadata, body=body)

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-provider"] == provider
    assert response.headers["x-portkey-last-used-option-index"] == target
    assert served_by(emulators) == ["openai" if provider == "openai" else "stability"]


def test_rest_inline_conditional_config_routes_the_same(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators
) -> None:
    response = post(rest, generate_key, tiered(vks), metadata={"tier": "platinum"})

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-provider"] == "openai"
    assert served_by(emulators) == ["openai"]


@pytest.mark.parametrize(
    ("metadata", "model", "provider", "target"),
    [
        ({"tier": "gold"}, "", "openai", "config.targets[0]"),
        ({"tier": "free"}, "", "stability-ai", "config.targets[1]"),
        ({"level": "3"}, "", "openai", "config.targets[0]"),
        ({}, "dall-e-3", "openai", "config.targets[0]"),
        ({}, "", "stability-ai", "config.targets[1]"),
    ],
    ids=["gold", "free", "level_3", "params_model", "no_metadata"],
)
def test_grpc_conditional_config_routes_by_request_metadata_and_params(
    generator: ImageGatewayClient,
    tiered_config_id: str,
    emulators: Emulators,
    metadata: dict[str, str],
    model: str,
    provider: str,
    target: str,
) -> None:
    fields: dict[str, Any] = {"model": model} if model else {}
    response = generator.generate_image(prompt="a lighthouse", config_id=tiered_config_id, metadata=metadata, **fields)

    assert response.outcome.provider == provider
    assert response.outcome.served_target == target
    assert not response.outcome.fallback_used
    assert served_by(emulators) == ["openai" if provider == "openai" else "stability"]


BAD_QUERY_PATH = "strategy.conditions[0].query.metadata.tier.$gt"


def bad_conditional(vks: VirtualKeys) -> dict[str, Any]:
    config = tiered(vks)
    config["strategy"]["conditions"][0]["query"] = {"metadata.tier": {"$gt": "three"}}
    return config


def test_rest_refuses_a_bad_conditional_config_naming_the_field_path(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators
) -> None:
    response = post(rest, generate_key, bad_conditional(vks))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == BAD_QUERY_PATH
    no_default = tiered(vks)
    del no_default["strategy"]["default"]
    response = post(rest, generate_key, no_default)
    assert response.status_code == 400 and response.json()["error"]["param"] == "strategy.default"
    assert served_by(emulators) == []


def test_grpc_refuses_a_bad_conditional_config_naming_the_field_path(
    admin: ImageGatewayClient, generator: ImageGatewayClient, vks: VirtualKeys
) -> None:
    with pytest.raises(InvalidArgumentError) as saved:
        admin.create_config("bad-conditional", bad_conditional(vks))
    with pytest.raises(InvalidArgumentError) as inline:
        generator.generate_image(prompt="x", config=bad_conditional(vks))
    for info in (saved, inline):
        error_info = info.value.error_info
        assert error_info is not None and error_info.metadata["param"] == BAD_QUERY_PATH


# -- loadbalance --------------------------------------------------------------------------------------


def zero_one(vks: VirtualKeys) -> dict[str, Any]:
    return {"strategy": {"mode": "loadbalance"}, "targets": [stable_diffusion(vks, weight=0), dalle(vks, weight=1)]}


def test_rest_loadbalance_never_picks_a_zero_weight(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators
) -> None:
    for _ in range(6):
        response = post(rest, generate_key, zero_one(vks))
        assert response.status_code == 200, response.text
        assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert len(emulators.openai.requests) == 6 and not emulators.stability.requests


def test_grpc_loadbalance_never_picks_a_zero_weight(
    generator: ImageGatewayClient, vks: VirtualKeys, emulators: Emulators
) -> None:
    for _ in range(6):
        assert generator.generate_image(prompt="x", config=zero_one(vks)).outcome.provider == "openai"
    assert len(emulators.openai.requests) == 6 and not emulators.stability.requests


def test_loadbalance_inside_fallback_moves_on_within_the_group(
    rest: httpx.Client, generator: ImageGatewayClient, generate_key: str, vks: VirtualKeys, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503), times=None)
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"strategy": {"mode": "loadbalance"}, "targets": [stable_diffusion(vks), dalle(vks)]}],
    }
    for _ in range(4):
        response = post(rest, generate_key, config)
        assert response.status_code == 200, response.text
        assert response.headers["x-portkey-last-used-option-index"] == "config.targets[0].targets[1]"
        outcome = generator.generate_image(prompt="x", config=config).outcome
        assert outcome.served_target == "config.targets[0].targets[1]"
        assert [a.provider for a in outcome.attempts] in (["openai"], ["stability-ai", "openai"])
    assert len(emulators.openai.requests) == 8


# -- the overall deadline -----------------------------------------------------------------------------


def slow_chain(vks: VirtualKeys) -> dict[str, Any]:
    """Stability gives up after its own 300 ms request_timeout (408); DALL-E has only what time is left."""
    return {"strategy": {"mode": "fallback"}, "targets": [stable_diffusion(vks, request_timeout=300), dalle(vks)]}


def test_rest_request_timeout_header_bounds_the_whole_chain_with_504(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.hang())
    emulators.openai.inject(Fault.hang())
    trace_id = f"rest-deadline-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    response = post(
        rest, generate_key, slow_chain(vks), **{"x-portkey-request-timeout": "1500", "x-portkey-trace-id": trace_id}
    )
    elapsed = time.monotonic() - started

    assert response.status_code == 504, response.text
    assert response.headers["x-should-retry"] == "false"
    error = response.json()["error"]
    assert error["code"] == "deadline_exceeded"
    assert [(a["provider"], a["status_code"]) for a in error["attempts"]] == [("stability-ai", 408), ("openai", 504)]
    assert 1.0 <= elapsed < SLOW_ENOUGH_TO_PROVE_A_CUT
    assert len(emulators.openai.requests) == 1  # the second target did get the time that was left
    record = eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))
    assert record.status_code == 504


def test_rest_request_timeout_that_is_long_enough_serves(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    response = post(rest, generate_key, slow_chain(vks), **{"x-portkey-request-timeout": "20000"})

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-provider"] == "openai"


ARABIC_INDIC_500 = "\u0665\u0660\u0660"  # str.isdigit() says yes; int() would read 500


@pytest.mark.parametrize(
    "value", ["abc", "0", "-5", "1.5", "1e3", "86400001", "99999999999999999999", ARABIC_INDIC_500]
)
def test_rest_bad_request_timeout_header_is_a_400_naming_it(
    rest: httpx.Client, generate_key: str, vks: VirtualKeys, emulators: Emulators, value: str
) -> None:
    response = rest.post(
        GENERATIONS,
        json={"prompt": "x"},
        headers={
            "x-portkey-api-key": generate_key,
            "x-portkey-config": json.dumps(dalle(vks)),
            "x-portkey-request-timeout": value.encode(),
        },
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "x-portkey-request-timeout"
    assert served_by(emulators) == []


def test_grpc_deadline_bounds_the_whole_chain(
    generator: ImageGatewayClient, vks: VirtualKeys, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.hang())
    emulators.openai.inject(Fault.hang())
    trace_id = f"grpc-deadline-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    with pytest.raises(ImageGatewayError) as info:
        generator.generate_image(prompt="x", config=slow_chain(vks), trace_id=trace_id, timeout=1.5)
    elapsed = time.monotonic() - started

    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < SLOW_ENOUGH_TO_PROVE_A_CUT
    # Stability's 408 left DALL-E the rest of the caller's time.
    eventually(lambda: emulators.openai.requests)
    assert len(emulators.stability.requests) == 1
    record = eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))
    # The gateway's own deadline (504) and gRPC cancelling the handler at the same instant (499) race.
    assert record.status_code in (504, 499)
