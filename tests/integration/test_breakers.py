"""Circuit breakers end to end: a failing emulator opens its target's circuit, later requests go
straight to the fallback without calling it, and after the configured cool-down one probe closes it.
The state is visible through ListTargetHealth, ``imagegw targets health`` and the metrics.

This module runs its own gateway: breaker state is per process, and the session's gateway is shared.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagegateway import ImageGatewayClient, PermissionDeniedError
from imagegateway.v1 import health_pb2
from imagegateway_server.cli import main as imagegw
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway

COOL_DOWN = 3.0  # long enough for the checks made while open, even on a slow machine
STABILITY_MODEL = "stable-diffusion-v1-6"


@pytest.fixture(scope="module")
def breaker_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    # The production defaults (the shared harness turns breakers off); the config below sets the
    # target's own thresholds on top, as a user would.
    with running_gateway(
        tmp_path_factory.mktemp("breakers"), breaker_consecutive_failures=5, breaker_failure_rate=0.5
    ) as running:
        yield running


@pytest.fixture(scope="module")
def client(breaker_gateway: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(breaker_gateway.grpc_target, api_key=breaker_gateway.admin_key, timeout=30) as c:
        yield c


def fallback_config(client: ImageGatewayClient, emulators: Emulators) -> str:
    suffix = uuid.uuid4().hex[:8]
    stability = client.create_virtual_key(
        f"stab-{suffix}", "stability-ai", STABILITY_SECRET, base_url=emulators.stability.base_url
    )
    openai = client.create_virtual_key(f"oai-{suffix}", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
    config = client.create_config(
        f"breakers-{suffix}",
        {
            "strategy": {"mode": "fallback"},
            "circuit_breaker": {"consecutive_failures": 2, "cooldown_seconds": COOL_DOWN},
            "targets": [
                {"virtual_key": stability.id, "override_params": {"model": STABILITY_MODEL}},
                {"virtual_key": openai.id, "override_params": {"model": "dall-e-3"}},
            ],
        },
    )
    return config.id


def stability_health(client: ImageGatewayClient) -> health_pb2.TargetHealth:
    (target,) = client.list_target_health("stabilityai")  # any spelling of the provider
    return target


def metric(gateway: GatewayThread, name: str, **labels: str) -> float | None:
    text = httpx.get(gateway.metrics_url, timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def cli(gateway: GatewayThread, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    code = imagegw(["targets", "health", "--server", gateway.grpc_target, "--api-key", gateway.admin_key, *args])
    assert code == 0
    return capsys.readouterr().out


def test_a_failing_target_opens_then_is_skipped_then_a_probe_closes_it(
    breaker_gateway: GatewayThread,
    client: ImageGatewayClient,
    emulators: Emulators,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config_id = fallback_config(client, emulators)
    emulators.stability.inject(Fault.status(503), times=None)

    # Two upstream failures (the config's consecutive_failures) open the circuit.
    for _ in range(2):
        response = client.generate_image(prompt="a kraken", config_id=config_id)
        assert response.outcome.provider == "openai"
        assert [(a.provider, a.status_code, a.circuit_open) for a in response.outcome.attempts] == [
            ("stability-ai", 503, False),
            ("openai", 200, False),
        ]
    assert len(emulators.stability.requests) == 2
    health = stability_health(client)
    assert health.state == health_pb2.CIRCUIT_STATE_OPEN
    assert health.consecutive_failures == 2 and health.window_calls == 2 and health.failure_rate == 1.0
    assert health.host == f"127.0.0.1:{emulators.stability.port}" and health.model == STABILITY_MODEL
    assert health.key_fingerprint.startswith("sha256:") and STABILITY_SECRET not in str(health)
    assert health.next_probe_time.ToSeconds() >= health.opened_time.ToSeconds()
    (shown,) = json.loads(cli(breaker_gateway, capsys, "-o", "json", "--provider", "stability-ai"))
    assert shown["state"] == "CIRCUIT_STATE_OPEN" and shown["host"] == health.host
    assert metric(breaker_gateway, "imagegateway_circuit_state", provider="stability-ai") == 2
    assert metric(breaker_gateway, "imagegateway_circuit_state", provider="openai") == 0
    assert metric(breaker_gateway, "imagegateway_circuit_transitions_total", provider="stability-ai", to="open") == 1

    # While it is open, requests go straight to the fallback: gRPC ...
    response = client.generate_image(prompt="a kraken", config_id=config_id)
    skipped, served = response.outcome.attempts
    assert (skipped.provider, skipped.status_code, skipped.circuit_open, skipped.error) == (
        "stability-ai",
        503,
        True,
        "circuit open",
    )
    assert (served.provider, served.status_code, served.circuit_open) == ("openai", 200, False)
    assert response.outcome.fallback_used
    # ... and REST, whose request log records the skip.
    rest = httpx.post(
        f"{breaker_gateway.rest_base_url}/images/generations",
        timeout=30,
        json={"prompt": "a kraken", "response_format": "b64_json"},
        headers={"x-portkey-api-key": breaker_gateway.admin_key, "x-portkey-config": config_id},
    )
    assert rest.status_code == 200 and rest.headers["x-portkey-provider"] == "openai"
    assert len(emulators.stability.requests) == 2  # not called while open
    trace_id = rest.headers["x-portkey-trace-id"]
    (entry,) = eventually(lambda: client.list_logs(trace_id=trace_id).logs)
    assert [(a.provider, a.circuit_open) for a in entry.attempts] == [("stability-ai", True), ("openai", False)]

    # The upstream recovers; after the cool-down the circuit is half-open and one probe closes it.
    emulators.stability.clear_faults()
    eventually(lambda: stability_health(client).state == health_pb2.CIRCUIT_STATE_HALF_OPEN, timeout=COOL_DOWN + 10)
    assert metric(breaker_gateway, "imagegateway_circuit_state", provider="stability-ai") == 1
    table = cli(breaker_gateway, capsys)
    assert "half_open" in table and "closed" in table  # stability half-open, openai closed
    response = client.generate_image(prompt="a kraken", config_id=config_id)
    assert [(a.provider, a.status_code, a.circuit_open) for a in response.outcome.attempts] == [
        ("stability-ai", 200, False)
    ]
    assert len(emulators.stability.requests) == 3
    assert stability_health(client).state == health_pb2.CIRCUIT_STATE_CLOSED
    assert metric(breaker_gateway, "imagegateway_circuit_state", provider="stability-ai") == 0
    for state in ("half_open", "closed"):
        assert metric(breaker_gateway, "imagegateway_circuit_transitions_total", provider="stability-ai", to=state) == 1


def test_target_health_needs_an_admin_key(breaker_gateway: GatewayThread, client: ImageGatewayClient) -> None:
    created = client.create_api_key(f"generate-{uuid.uuid4().hex[:6]}", "generate")
    with (
        ImageGatewayClient(breaker_gateway.grpc_target, api_key=created.key) as generator,
        pytest.raises(PermissionDeniedError),
    ):
        generator.list_target_health()


def test_a_bad_circuit_breaker_value_is_refused_naming_the_field(breaker_gateway: GatewayThread) -> None:
    response = httpx.post(
        f"{breaker_gateway.rest_base_url}/images/generations",
        timeout=30,
        json={"prompt": "x"},
        headers={
            "x-portkey-api-key": breaker_gateway.admin_key,
            "x-portkey-config": json.dumps(
                {
                    "strategy": {"mode": "fallback"},
                    "targets": [
                        {"provider": "openai", "api_key": "sk-x"},
                        {"provider": "openai", "api_key": "sk-x", "circuit_breaker": {"failure_rate": 3}},
                    ],
                }
            ),
        },
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "targets[1].circuit_breaker.failure_rate"
