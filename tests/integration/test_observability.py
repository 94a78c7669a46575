"""One story, three witnesses: what the response headers, the request log and the metrics say about a
fallback, a retry, a cache hit and an all-failed request; W3C trace context end to end; ``logs tail``.

The module runs its own gateway (real sockets, emulators upstream) with circuit breakers off, so the
failures injected here never open a circuit for other tests, and metric deltas are this module's.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import ImageGatewayClient, ImageGatewayError
from imagegateway.v1 import images_pb2, logs_pb2, service_pb2_grpc
from imagegateway_server.observability.logging import JsonFormatter
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators, eventually
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway
from tests.integration.test_grpc_api import prometheus_samples

HTTP_TIMEOUT = 30.0
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
GENERATIONS = "/images/generations"
DALL_E_3_STANDARD_1024 = 0.04
# Circuit breakers off: the failures injected here must not open circuits that change later answers.
BREAKERS_OFF: dict[str, Any] = {"breaker_consecutive_failures": 0, "breaker_failure_rate": 0.0}


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(tmp_path_factory.mktemp("observability"), **BREAKERS_OFF) as running:
        yield running


@pytest.fixture(scope="module")
def admin_client(observed: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(observed.grpc_target, api_key=observed.admin_key, timeout=HTTP_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def caller(admin_client: ImageGatewayClient) -> tuple[str, str]:
    created = admin_client.create_api_key(f"observability-{uuid.uuid4().hex[:6]}", "generate")
    return created.api_key.id, created.key


@pytest.fixture(scope="module")
def keys(
    admin_client: ImageGatewayClient, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> dict[str, str]:
    stability = admin_client.create_virtual_key(
        "obs-stability", "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url
    )
    openai = admin_client.create_virtual_key("obs-openai", "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
    return {"stability": stability.id, "openai": openai.id}


@pytest.fixture(scope="module")
def fallback_config(admin_client: ImageGatewayClient, keys: dict[str, str]) -> str:
    return admin_client.create_config(
        "obs-fallback",
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"virtual_key": keys["stability"], "override_params": {"model": "stable-diffusion-v1-6"}},
                {"virtual_key": keys["openai"], "override_params": {"model": "dall-e-3"}},
            ],
        },
    ).id


@pytest.fixture
def rest(observed: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=observed.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        yield client


@pytest.fixture
def grpc_caller(observed: GatewayThread, caller: tuple[str, str]) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(observed.grpc_target, api_key=caller[1], timeout=HTTP_TIMEOUT) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def log_of(admin: ImageGatewayClient, trace_id: str) -> logs_pb2.RequestLog:
    return eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))


class MetricsSnapshot:
    """The metrics endpoint at one moment; ``delta`` compares a later one against it."""

    def __init__(self, gateway: GatewayThread) -> None:
        self.text = httpx.get(gateway.metrics_url, timeout=HTTP_TIMEOUT).text
        self.samples = {
            (name, tuple(sorted(labels.items()))): value for name, labels, value in prometheus_samples(self.text)
        }

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, tuple(sorted(labels.items()))), 0.0)

    def delta(self, before: MetricsSnapshot, name: str, **labels: str) -> float:
        return round(self.value(name, **labels) - before.value(name, **labels), 9)


def http_counted(gateway: GatewayThread, before: MetricsSnapshot, route: str, status: str) -> float:
    """The REST request counter's delta once it moved: the shim counts a response after sending it."""

    def moved() -> float:
        return MetricsSnapshot(gateway).delta(before, "imagegateway_http_requests_total", route=route, status=status)

    eventually(moved, timeout=10)
    return moved()


def generate_rest(rest: httpx.Client, key: tuple[str, str], **headers: str) -> httpx.Response:
    return rest.post(
        GENERATIONS,
        headers={"x-portkey-api-key": key[1], **headers},
        json={"prompt": "a lighthouse at dusk", "response_format": "b64_json", "size": "1024x1024"},
    )


# -- the three witnesses ---------------------------------------------------------------------------


def test_a_fallback_reads_the_same_in_headers_log_and_metrics(
    observed: GatewayThread,
    rest: httpx.Client,
    admin_client: ImageGatewayClient,
    caller: tuple[str, str],
    fallback_config: str,
    emulators: Emulators,
) -> None:
    emulators.stability.inject(Fault.status(503))
    trace_id = unique("fallback")
    before = MetricsSnapshot(observed)
    response = generate_rest(
        rest,
        caller,
        **{
            "x-portkey-config": fallback_config,
            "x-portkey-trace-id": trace_id,
            "x-portkey-metadata": '{"team": "web"}',
        },
    )

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-trace-id"] == trace_id
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert response.headers["x-imagegw-cost-usd"] == "0.04"
    image = base64.b64decode(response.json()["data"][0]["b64_json"])

    log = log_of(admin_client, trace_id)
    assert log.id == response.headers["x-imagegw-log-id"]
    assert (log.status_code, log.transport, log.caller_key_id) == (200, "rest", caller[0])
    assert (log.config_id, log.config_version) == (fallback_config, 1)
    assert log.prompt == "a lighthouse at dusk" and dict(log.metadata) == {"team": "web"}
    assert (log.provider, log.model, log.served_target, log.fallback_used) == (
        "openai",
        "dall-e-3",
        "config.targets[1]",
        True,
    )
    assert log.cache_status == images_pb2.CACHE_STATUS_DISABLED
    assert [
        (a.target, a.provider, a.model, a.status_code, a.error_kind, a.retry_index, a.circuit_open)
        for a in log.attempts
    ] == [
        (
            "config.targets[0]",
            "stability-ai",
            "stable-diffusion-v1-6",
            503,
            images_pb2.ERROR_KIND_UNAVAILABLE,
            0,
            False,
        ),
        ("config.targets[1]", "openai", "dall-e-3", 200, images_pb2.ERROR_KIND_UNSPECIFIED, 0, False),
    ]
    assert log.attempts[0].error
    assert [(i.sha256, i.width, i.height, i.bytes) for i in log.images] == [
        (hashlib.sha256(image).hexdigest(), 1024, 1024, len(image))
    ]
    assert log.cost_usd == pytest.approx(DALL_E_3_STANDARD_1024)
    assert log.latency_ms >= sum(a.latency_ms for a in log.attempts) - len(log.attempts)

    # The new ListLogs filters find it, and exclude it when they should.
    assert log.id in [
        r.id
        for r in admin_client.list_logs(
            model="dall-e-3", config_id=fallback_config, fallback_used=True, caller_key_id=caller[0]
        ).logs
    ]
    assert log.id not in [r.id for r in admin_client.list_logs(config_id=fallback_config, fallback_used=False).logs]
    assert log.id not in [r.id for r in admin_client.list_logs(model="dall-e-2").logs]

    after = MetricsSnapshot(observed)
    assert (
        after.delta(before, "imagegateway_requests_total", transport="rest", outcome="success", config=fallback_config)
        == 1
    )
    assert (
        after.delta(
            before,
            "imagegateway_fallbacks_total",
            from_provider="stability-ai",
            to_provider="openai",
            reason="unavailable",
        )
        == 1
    )
    assert (
        after.delta(
            before,
            "imagegateway_attempts_total",
            provider="stability-ai",
            model="stable-diffusion-v1-6",
            outcome="unavailable",
        )
        == 1
    )
    assert (
        after.delta(before, "imagegateway_attempts_total", provider="openai", model="dall-e-3", outcome="success") == 1
    )
    assert after.delta(before, "imagegateway_images_generated_total", provider="openai", model="dall-e-3") == 1
    assert after.delta(before, "imagegateway_cost_usd_total", provider="openai", model="dall-e-3") == pytest.approx(
        DALL_E_3_STANDARD_1024
    )
    assert http_counted(observed, before, "/v1/images/generations", "200") == 1
    assert (
        after.delta(
            before, "imagegateway_upstream_request_duration_seconds_count", provider="openai", outcome="success"
        )
        == 1
    )
    assert trace_id not in after.text and caller[1] not in after.text


def test_a_retry_reads_the_same_in_the_grpc_response_log_and_metrics(
    observed: GatewayThread,
    grpc_caller: ImageGatewayClient,
    admin_client: ImageGatewayClient,
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    emulators.openai.inject(Fault.status(503))
    trace_id = unique("retry")
    before = MetricsSnapshot(observed)
    response = grpc_caller.generate_image(
        prompt="a kite",
        size="1024x1024",
        trace_id=trace_id,
        config={
            "virtual_key": keys["openai"],
            "override_params": {"model": "dall-e-3"},
            "retry": {"attempts": 2, "on_status_codes": [503]},
        },
    )

    outcome = response.outcome
    assert (outcome.trace_id, outcome.retry_attempt_count, outcome.fallback_used) == (trace_id, 1, False)
    assert outcome.cost_usd == pytest.approx(DALL_E_3_STANDARD_1024)
    log = log_of(admin_client, trace_id)
    assert (log.transport, log.config_id, log.cost_usd) == ("grpc", "", pytest.approx(DALL_E_3_STANDARD_1024))
    assert [(a.retry_index, a.status_code) for a in log.attempts] == [(0, 503), (1, 200)]
    assert not log.fallback_used and log.served_target == outcome.served_target

    after = MetricsSnapshot(observed)
    assert after.delta(before, "imagegateway_retries_total", provider="openai") == 1
    assert after.delta(before, "imagegateway_requests_total", transport="grpc", outcome="success", config="inline") == 1
    assert (
        after.delta(before, "imagegateway_attempts_total", provider="openai", model="dall-e-3", outcome="unavailable")
        == 1
    )
    assert (
        after.delta(
            before,
            "grpc_server_handled_total",
            grpc_type="unary",
            grpc_service="imagegateway.v1.ImageGateway",
            grpc_method="GenerateImage",
            grpc_code="OK",
        )
        == 1
    )
    assert not [
        labels
        for (name, labels) in after.samples
        if name == "imagegateway_fallbacks_total" and after.delta(before, name, **dict(labels))
    ]


def test_an_all_failed_request_reads_the_same_in_headers_log_and_metrics(
    observed: GatewayThread,
    rest: httpx.Client,
    admin_client: ImageGatewayClient,
    caller: tuple[str, str],
    fallback_config: str,
    emulators: Emulators,
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    trace_id = unique("all-failed")
    before = MetricsSnapshot(observed)
    response = generate_rest(rest, caller, **{"x-portkey-config": fallback_config, "x-portkey-trace-id": trace_id})

    assert response.status_code == 503
    assert response.headers["x-portkey-trace-id"] == trace_id
    log = log_of(admin_client, trace_id)
    assert log.id == response.headers["x-imagegw-log-id"]
    # Nothing served, so no fallback in the log (issue 14); the router still moved on, as the metric says.
    assert (log.status_code, log.error_kind, log.fallback_used) == (503, images_pb2.ERROR_KIND_UNAVAILABLE, False)
    assert [(a.provider, a.status_code) for a in log.attempts] == [("stability-ai", 503), ("openai", 503)]
    assert not log.images and log.cost_usd == 0 and not log.served_target
    assert log.id in [r.id for r in admin_client.list_logs(outcome="failure", config_id=fallback_config).logs]

    after = MetricsSnapshot(observed)
    assert (
        after.delta(before, "imagegateway_requests_total", transport="rest", outcome="failure", config=fallback_config)
        == 1
    )
    assert (
        after.delta(
            before,
            "imagegateway_fallbacks_total",
            from_provider="stability-ai",
            to_provider="openai",
            reason="unavailable",
        )
        == 1
    )
    assert http_counted(observed, before, "/v1/images/generations", "503") == 1
    assert after.delta(before, "imagegateway_cost_usd_total", provider="openai", model="dall-e-3") == 0


def test_a_cache_hit_costs_nothing_in_the_header_the_log_and_the_metrics(
    observed: GatewayThread,
    rest: httpx.Client,
    admin_client: ImageGatewayClient,
    caller: tuple[str, str],
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    config = json.dumps(
        {
            "virtual_key": keys["openai"],
            "override_params": {"model": "dall-e-3"},
            "cache": {"mode": "simple", "max_age": 300},
        }
    )
    prompt_headers = {"x-portkey-config": config}
    first_trace, second_trace = unique("cache-miss"), unique("cache-hit")
    body = {"prompt": f"a cached lighthouse {uuid.uuid4().hex}", "response_format": "b64_json"}
    miss = rest.post(
        GENERATIONS,
        json=body,
        headers={"x-portkey-api-key": caller[1], "x-portkey-trace-id": first_trace, **prompt_headers},
    )
    before = MetricsSnapshot(observed)
    hit = rest.post(
        GENERATIONS,
        json=body,
        headers={"x-portkey-api-key": caller[1], "x-portkey-trace-id": second_trace, **prompt_headers},
    )
    after = MetricsSnapshot(observed)

    assert (miss.status_code, hit.status_code) == (200, 200)
    assert (miss.headers["x-portkey-cache-status"], hit.headers["x-portkey-cache-status"]) == ("MISS", "HIT")
    assert (miss.headers["x-imagegw-cost-usd"], hit.headers["x-imagegw-cost-usd"]) == ("0.04", "0")
    assert len([r for r in emulators.openai.requests if r.json]) == 1
    hit_log = log_of(admin_client, second_trace)
    assert (hit_log.cache_status, hit_log.cost_usd) == (images_pb2.CACHE_STATUS_HIT, 0)
    assert log_of(admin_client, first_trace).cost_usd == pytest.approx(DALL_E_3_STANDARD_1024)
    assert after.delta(before, "imagegateway_cost_usd_total", provider="openai", model="dall-e-3") == 0
    assert after.delta(before, "imagegateway_images_generated_total", provider="openai", model="dall-e-3") == 0
    assert after.delta(before, "imagegateway_requests_total", transport="rest", outcome="success", config="inline") == 1


def test_every_rest_route_is_counted_by_template_and_unknown_paths_share_one_label(
    observed: GatewayThread,
    rest: httpx.Client,
) -> None:
    before = MetricsSnapshot(observed)
    secret_path = f"/v1/nope-{uuid.uuid4().hex}"
    assert rest.get(secret_path).status_code == 404
    assert rest.get("/images/generations").status_code == 405
    assert httpx.get(observed.rest_base_url.removesuffix("/v1") + "/health").status_code == 200
    assert http_counted(observed, before, "unmatched", "404") == 1
    assert http_counted(observed, before, "/v1/images/generations", "405") == 1
    assert http_counted(observed, before, "/health", "200") == 1
    assert secret_path not in MetricsSnapshot(observed).text


def test_grpc_server_metrics_exist_at_zero_before_any_call(observed: GatewayThread) -> None:
    snapshot = MetricsSnapshot(observed)
    assert (
        "grpc_server_handled_total",
        (
            ("grpc_code", "Unavailable"),
            ("grpc_method", "DeleteConfig"),
            ("grpc_service", "imagegateway.v1.ImageGateway"),
            ("grpc_type", "unary"),
        ),
    ) in snapshot.samples


def test_a_generate_key_lists_only_its_own_requests_whatever_caller_it_asks_for(
    grpc_caller: ImageGatewayClient,
    admin_client: ImageGatewayClient,
    caller: tuple[str, str],
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    mine, theirs = unique("mine"), unique("theirs")
    grpc_caller.generate_image(prompt="a kite", trace_id=mine, virtual_key=keys["openai"], model="dall-e-2")
    admin_client.generate_image(prompt="a kite", trace_id=theirs, virtual_key=keys["openai"], model="dall-e-2")
    log_of(admin_client, theirs)
    own = [log.trace_id for log in grpc_caller.iter_logs(caller_key_id=caller[0])]
    assert mine in own and theirs not in own
    assert theirs not in [log.trace_id for log in grpc_caller.iter_logs()]
    admin_key_id = log_of(admin_client, theirs).caller_key_id
    with pytest.raises(ImageGatewayError) as refused:
        grpc_caller.list_logs(caller_key_id=admin_key_id)
    assert refused.value.code.name == "PERMISSION_DENIED"
    assert theirs in [log.trace_id for log in admin_client.list_logs(caller_key_id=admin_key_id).logs]


# -- W3C trace context -----------------------------------------------------------------------------


def test_a_traceparent_sets_the_trace_id_and_providers_get_a_child_of_it(
    rest: httpx.Client,
    admin_client: ImageGatewayClient,
    caller: tuple[str, str],
    fallback_config: str,
    emulators: Emulators,
) -> None:
    trace = uuid.uuid4().hex
    parent = f"00-{trace}-00f067aa0ba902b7-01"
    emulators.stability.inject(Fault.status(503))
    response = generate_rest(
        rest, caller, **{"x-portkey-config": fallback_config, "traceparent": parent, "tracestate": "vendor=opaque"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-trace-id"] == trace
    assert log_of(admin_client, trace).trace_id == trace
    upstream = [r.headers for r in (*emulators.stability.requests, *emulators.openai.requests)]
    assert len(upstream) == 2
    for headers in upstream:  # every provider call, failed or not, continues the caller's trace
        sent = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-01", headers["traceparent"])
        assert sent is not None and sent[1] == trace and sent[2] not in ("00f067aa0ba902b7", "0" * 16)
        assert headers["tracestate"] == "vendor=opaque"


def test_the_portkey_trace_id_wins_over_a_traceparent_over_grpc(
    grpc_caller: ImageGatewayClient,
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    trace_id = unique("portkey-wins")
    call = grpc_caller.generate_image(
        prompt="a kite", trace_id=trace_id, virtual_key=keys["openai"], model="dall-e-2", metadata={}
    )
    assert call.outcome.trace_id == trace_id
    assert "traceparent" not in emulators.openai.requests[-1].headers  # none came, none invented


def test_a_traceparent_in_grpc_metadata_sets_the_trace_id(
    observed: GatewayThread,
    caller: tuple[str, str],
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    request = images_pb2.GenerateImageRequest(routing=images_pb2.Routing(virtual_key=keys["openai"]))
    request.parameters.prompt = "a kite"
    request.parameters.model = "dall-e-2"
    with grpc.insecure_channel(observed.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        response, call = stub.GenerateImage.with_call(
            request,
            timeout=HTTP_TIMEOUT,
            metadata=(("authorization", f"Bearer {caller[1]}"), ("traceparent", f"00-{TRACE}-00f067aa0ba902b7-00")),
        )
    assert response.outcome.trace_id == TRACE
    assert ("x-portkey-trace-id", TRACE) in call.initial_metadata()
    assert emulators.openai.requests[-1].headers["traceparent"].startswith(f"00-{TRACE}-")


def test_a_malformed_traceparent_is_ignored_not_an_error(
    rest: httpx.Client,
    caller: tuple[str, str],
    keys: dict[str, str],
    emulators: Emulators,
) -> None:
    response = generate_rest(
        rest,
        caller,
        **{"x-portkey-virtual-key": keys["openai"], "traceparent": f"00-{TRACE.upper()}-00f067aa0ba902b7-01"},
    )
    assert response.status_code == 200, response.text
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-portkey-trace-id"])
    assert response.headers["x-portkey-trace-id"] != TRACE.lower()
    assert "traceparent" not in emulators.openai.requests[-1].headers


def test_a_failed_grpc_call_still_echoes_its_trace_id(observed: GatewayThread, caller: tuple[str, str]) -> None:
    request = images_pb2.GenerateImageRequest(trace_id=unique("grpc-failed"))  # no parameters: refused
    with grpc.insecure_channel(observed.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GenerateImage(request, timeout=HTTP_TIMEOUT, metadata=(("authorization", f"Bearer {caller[1]}"),))
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert ("x-portkey-trace-id", request.trace_id) in error.initial_metadata()


# -- imagegw logs tail -----------------------------------------------------------------------------


def test_logs_tail_prints_a_new_record_once_and_ctrl_c_exits_0(
    observed: GatewayThread,
    rest: httpx.Client,
    caller: tuple[str, str],
    keys: dict[str, str],
    emulators: Emulators,
    tmp_path: Path,
) -> None:
    def generate(trace_id: str) -> None:
        response = generate_rest(
            rest, caller, **{"x-portkey-virtual-key": keys["openai"], "x-portkey-trace-id": trace_id}
        )
        assert response.status_code == 200, response.text

    def printed(trace_id: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in out_path.read_text().splitlines() if trace_id in line]

    # A record older than the tail: with -n 1 the tail prints it once it has listed, which is how
    # this test knows the tail is running before it writes the record the tail must follow.
    before_tail, after_tail = unique("before-tail"), unique("after-tail")
    generate(before_tail)
    eventually(lambda: observed_log_exists(observed, before_tail))
    out_path = tmp_path / "tail.out"
    env = {
        **os.environ,
        "IMAGEGW_SERVER": observed.grpc_target,
        "IMAGEGW_API_KEY": observed.admin_key,
        "PYTHONUNBUFFERED": "1",
    }
    with out_path.open("w") as out:
        tail = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "imagegateway_server.cli",
                "logs",
                "tail",
                "-n",
                "1",
                "--interval",
                "0.2",
                "-o",
                "json",
            ],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
            cwd=Path(__file__).parents[2],
        )
        try:
            eventually(lambda: printed(before_tail), timeout=60)
            generate(after_tail)
            eventually(lambda: printed(after_tail), timeout=30)
            time.sleep(1.0)  # several more polls: nothing may be printed twice
            tail.send_signal(signal.SIGINT)
            code = tail.wait(timeout=30)
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
    stderr = tail.stderr.read().decode() if tail.stderr else ""
    assert code == 0, stderr
    [old], [new] = printed(before_tail), printed(after_tail)
    assert (old["trace_id"], new["trace_id"], new["status_code"]) == (before_tail, after_tail, 200)
    assert len(out_path.read_text().splitlines()) == 2


def observed_log_exists(gateway: GatewayThread, trace_id: str) -> bool:
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as client:
        return bool(client.list_logs(trace_id=trace_id).logs)


# -- settings: a price table file, prompt redaction, trace ids in process logs ----------------------


def test_a_price_table_file_prices_requests_and_log_lines_carry_the_trace_id(
    tmp_path: Path, emulators: Emulators
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps(
            {
                "version": "negotiated-2025",
                "providers": {"openai": {"models": {"dall-e-2": {"prices": {"*": {"*": 1.25}}}}}},
            }
        )
    )
    captured = io.StringIO()
    handler = logging.StreamHandler(captured)
    handler.setFormatter(JsonFormatter())
    costs_log = logging.getLogger("imagegateway_server.core.pricing")
    costs_log.addHandler(handler)
    try:
        with (
            running_gateway(
                tmp_path / "data", price_table_file=str(prices), redact_prompts=True, **BREAKERS_OFF
            ) as gateway,
            ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin,
            httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client,
        ):
            vk = admin.create_virtual_key(
                "priced-openai", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url
            ).id
            headers = {"x-portkey-api-key": gateway.admin_key, "x-portkey-virtual-key": vk}
            priced, unpriced = unique("priced"), unique("unpriced")
            cheap = client.post(
                GENERATIONS,
                headers={**headers, "x-portkey-trace-id": priced},
                json={"prompt": "a secret plan", "model": "dall-e-2", "n": 2},
            )
            free = client.post(
                GENERATIONS,
                headers={**headers, "x-portkey-trace-id": unpriced},
                json={"prompt": "a secret plan", "model": "dall-e-3"},
            )
            assert (cheap.status_code, free.status_code) == (200, 200)
            assert (cheap.headers["x-imagegw-cost-usd"], free.headers["x-imagegw-cost-usd"]) == ("2.5", "0")
            record = log_of(admin, priced)
            assert record.cost_usd == 2.5 and record.prompt == ""  # IMAGEGW_REDACT_PROMPTS
    finally:
        costs_log.removeHandler(handler)
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    warning = next(line for line in lines if line.get("model") == "dall-e-3")
    assert warning["trace_id"] == unpriced and warning["level"] == "warning"
    assert "a secret plan" not in captured.getvalue()
