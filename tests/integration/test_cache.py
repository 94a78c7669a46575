"""The response cache over real sockets, through both front ends, against the provider emulators.

Every test uses its own prompt, so entries other tests left in the session gateway's cache never
answer for it; "no upstream call" is read from the emulators' recorded requests.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import ImageGatewayClient, InvalidArgumentError, build_generate_request
from imagegateway.v1 import images_pb2, logs_pb2, service_pb2_grpc
from tests.conftest import Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread

GENERATIONS = "/images/generations"
TIMEOUT = 30.0
CACHE = {"mode": "simple", "max_age": 600}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def chain(seed: Seed, **top: Any) -> dict[str, Any]:
    """The cookbook's Stability-then-DALL-E-3 fallback with extra top-level settings."""
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"virtual_key": seed.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}},
            {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-3"}},
        ],
        **top,
    }


@pytest.fixture(scope="module")
def cached_config(admin: ImageGatewayClient, seed: Seed) -> str:
    return admin.create_config(unique("cached"), chain(seed, cache=CACHE)).id


@pytest.fixture(scope="module")
def multi_config(admin: ImageGatewayClient, seed: Seed) -> str:
    config = chain(seed, cache={**CACHE, "include_seeded_and_multi_image": True})
    return admin.create_config(unique("cached-multi"), config).id


@pytest.fixture(scope="module")
def tenants(admin: ImageGatewayClient) -> tuple[str, str]:
    """Two `generate` gateway keys: two tenants."""
    return (
        admin.create_api_key(unique("tenant-a"), "generate").key,
        admin.create_api_key(unique("tenant-b"), "generate").key,
    )


@pytest.fixture
def rest(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def grpc_a(gateway: GatewayThread, tenants: tuple[str, str]) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=tenants[0], timeout=TIMEOUT) as client:
        yield client


def post(rest: httpx.Client, key: str, config_id: str, prompt: str, **extra: Any) -> httpx.Response:
    headers = {"x-portkey-api-key": key, "x-portkey-config": config_id, **extra.pop("headers", {})}
    return rest.post(GENERATIONS, json={"prompt": prompt, "response_format": "b64_json", **extra}, headers=headers)


def images_of(response: httpx.Response) -> list[bytes]:
    assert response.status_code == 200, response.text
    return [base64.b64decode(item["b64_json"]) for item in response.json()["data"]]


def upstream_calls(emulators: Emulators) -> int:
    return len(emulators.stability.requests) + len(emulators.openai.requests)


def log_of(admin: ImageGatewayClient, trace_id: str) -> logs_pb2.RequestLog:
    return eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))


def gauge(gateway: GatewayThread, sample: str) -> float:
    """The value of one sample (name plus labels, as Prometheus prints it) on the metrics endpoint."""
    text = httpx.get(gateway.metrics_url, timeout=TIMEOUT).text
    return float(next(row for row in text.splitlines() if row.startswith(sample + " ")).split()[-1])


def metric(gateway: GatewayThread, status: str) -> float:
    return gauge(gateway, f'imagegateway_cache_requests_total{{status="{status}"}}')


def refresh_request(config_id: str, prompt: str) -> images_pb2.GenerateImageRequest:
    request = build_generate_request(prompt=prompt, config_id=config_id)
    request.cache_force_refresh = True
    return request


# -- MISS then HIT -----------------------------------------------------------------------------------


def test_rest_miss_then_hit_answers_the_same_images_without_an_upstream_call(
    rest: httpx.Client, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a lighthouse")
    miss = post(rest, tenants[0], cached_config, prompt)
    assert miss.headers["x-portkey-cache-status"] == "MISS"
    assert upstream_calls(emulators) == 1

    hit = post(rest, tenants[0], cached_config, prompt)
    assert hit.headers["x-portkey-cache-status"] == "HIT"
    assert images_of(hit) == images_of(miss)
    assert upstream_calls(emulators) == 1
    assert hit.headers["x-portkey-provider"] == "stability-ai"
    assert hit.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert hit.headers["x-portkey-retry-attempt-count"] == "0"


def test_grpc_miss_then_hit_reports_the_status_and_no_attempts(
    grpc_a: ImageGatewayClient, cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a kite")
    miss = grpc_a.generate_image(prompt=prompt, config_id=cached_config)
    hit = grpc_a.generate_image(prompt=prompt, config_id=cached_config)

    assert miss.outcome.cache_status == images_pb2.CACHE_STATUS_MISS
    assert len(miss.outcome.attempts) == 1
    assert hit.outcome.cache_status == images_pb2.CACHE_STATUS_HIT
    assert list(hit.outcome.attempts) == [] and hit.outcome.cost_usd == 0
    assert (hit.outcome.provider, hit.outcome.served_target) == ("stability-ai", "config.targets[0]")
    assert [i.data for i in hit.images] == [i.data for i in miss.images]
    assert (hit.images[0].width, hit.images[0].height) == (miss.images[0].width, miss.images[0].height)
    assert len(emulators.stability.requests) == 1


def test_streaming_hit_carries_the_status_on_its_last_message(
    grpc_a: ImageGatewayClient, cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a stream")
    grpc_a.generate_image(prompt=prompt, config_id=cached_config)
    messages = list(grpc_a.stream_generate_image(prompt=prompt, config_id=cached_config))
    assert messages[-1].outcome.cache_status == images_pb2.CACHE_STATUS_HIT
    assert len(emulators.stability.requests) == 1


def test_a_grpc_answer_serves_a_rest_b64_json_request_of_the_same_tenant(
    rest: httpx.Client,
    grpc_a: ImageGatewayClient,
    tenants: tuple[str, str],
    cached_config: str,
    emulators: Emulators,
) -> None:
    prompt = unique("a harbour")
    first = grpc_a.generate_image(prompt=prompt, config_id=cached_config)
    hit = post(rest, tenants[0], cached_config, prompt)
    assert hit.headers["x-portkey-cache-status"] == "HIT"
    assert images_of(hit) == [first.images[0].data]
    assert upstream_calls(emulators) == 1


def test_a_hit_log_record_has_no_attempts_no_cost_and_names_the_target_that_originally_served(
    rest: httpx.Client,
    admin: ImageGatewayClient,
    tenants: tuple[str, str],
    cached_config: str,
    emulators: Emulators,
) -> None:
    prompt = unique("a fallback")
    emulators.stability.inject(Fault.status(503))
    miss_trace, hit_trace = unique("miss"), unique("hit")
    miss = post(rest, tenants[0], cached_config, prompt, headers={"x-portkey-trace-id": miss_trace})
    assert miss.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    hit = post(rest, tenants[0], cached_config, prompt, headers={"x-portkey-trace-id": hit_trace})
    assert hit.headers["x-portkey-cache-status"] == "HIT"
    assert hit.headers["x-portkey-provider"] == "openai"
    assert hit.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert upstream_calls(emulators) == 2  # Stability's 503 and DALL-E 3's answer, once

    missed, served = log_of(admin, miss_trace), log_of(admin, hit_trace)
    assert missed.cache_status == images_pb2.CACHE_STATUS_MISS and len(missed.attempts) == 2
    assert served.cache_status == images_pb2.CACHE_STATUS_HIT
    assert list(served.attempts) == [] and served.cost_usd == 0
    assert (served.status_code, served.provider, served.model) == (200, "openai", "dall-e-3")
    assert served.served_target == "config.targets[1]" and not served.fallback_used
    assert [i.sha256 for i in served.images] == [i.sha256 for i in missed.images]


# -- REFRESH, DISABLED and what is not cached ------------------------------------------------------


def test_rest_force_refresh_calls_upstream_and_keeps_the_fresh_answer(
    rest: httpx.Client, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a refresh")
    post(rest, tenants[0], cached_config, prompt)
    refreshed = post(rest, tenants[0], cached_config, prompt, headers={"x-portkey-cache-force-refresh": "true"})
    assert refreshed.headers["x-portkey-cache-status"] == "REFRESH"
    assert upstream_calls(emulators) == 2
    hit = post(rest, tenants[0], cached_config, prompt)
    assert hit.headers["x-portkey-cache-status"] == "HIT" and images_of(hit) == images_of(refreshed)
    assert upstream_calls(emulators) == 2


def test_grpc_cache_force_refresh_calls_upstream(
    grpc_a: ImageGatewayClient, cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a grpc refresh")
    grpc_a.generate_image(prompt=prompt, config_id=cached_config)
    refreshed = grpc_a.generate_image(refresh_request(cached_config, prompt))
    assert refreshed.outcome.cache_status == images_pb2.CACHE_STATUS_REFRESH
    assert len(refreshed.outcome.attempts) == 1
    assert len(emulators.stability.requests) == 2


def test_a_config_without_cache_is_disabled_on_both_front_ends(
    rest: httpx.Client, grpc_a: ImageGatewayClient, tenants: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    prompt = unique("uncached")
    for _ in range(2):
        assert post(rest, tenants[0], seed.config_id, prompt).headers["x-portkey-cache-status"] == "DISABLED"
        response = grpc_a.generate_image(prompt=prompt, config_id=seed.config_id)
        assert response.outcome.cache_status == images_pb2.CACHE_STATUS_DISABLED
    assert len(emulators.stability.requests) == 4


def test_a_second_tenant_never_gets_the_first_tenants_answer(
    rest: httpx.Client, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a secret plan")
    post(rest, tenants[0], cached_config, prompt)
    assert post(rest, tenants[0], cached_config, prompt).headers["x-portkey-cache-status"] == "HIT"
    other = post(rest, tenants[1], cached_config, prompt)
    assert other.headers["x-portkey-cache-status"] == "MISS"
    assert upstream_calls(emulators) == 2


@pytest.mark.parametrize("extra", [{"seed": 42}, {"n": 2}], ids=["seed", "n2"])
def test_seeded_and_multi_image_requests_are_cached_only_when_the_config_says_so(
    rest: httpx.Client,
    tenants: tuple[str, str],
    cached_config: str,
    multi_config: str,
    emulators: Emulators,
    extra: dict[str, Any],
) -> None:
    prompt = unique("seeded")
    for _ in range(2):
        assert post(rest, tenants[0], cached_config, prompt, **extra).headers["x-portkey-cache-status"] == "DISABLED"
    assert len(emulators.stability.requests) == 2

    first = post(rest, tenants[0], multi_config, prompt, **extra)
    second = post(rest, tenants[0], multi_config, prompt, **extra)
    assert (first.headers["x-portkey-cache-status"], second.headers["x-portkey-cache-status"]) == ("MISS", "HIT")
    assert images_of(second) == images_of(first) and len(images_of(second)) == extra.get("n", 1)
    assert len(emulators.stability.requests) == 3


def test_a_failed_request_is_not_cached(
    rest: httpx.Client, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a failure")
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    failed = post(rest, tenants[0], cached_config, prompt)
    assert failed.status_code == 503
    again = post(rest, tenants[0], cached_config, prompt)
    assert again.headers["x-portkey-cache-status"] == "MISS"
    assert upstream_calls(emulators) == 3


# -- identical requests in flight --------------------------------------------------------------------


def test_identical_requests_in_flight_share_one_upstream_call(
    gateway: GatewayThread, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    prompt = unique("a crowd")
    emulators.stability.inject(Fault.latency(1500))

    def one(_: int) -> httpx.Response:
        with httpx.Client(base_url=gateway.rest_base_url, timeout=TIMEOUT) as client:
            return post(client, tenants[0], cached_config, prompt)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(one, range(6)))
    statuses = sorted(r.headers["x-portkey-cache-status"] for r in responses)
    assert statuses == ["HIT"] * 5 + ["MISS"]
    assert len({tuple(images_of(r)) for r in responses}) == 1
    assert len(emulators.stability.requests) == 1 and emulators.openai.requests == []


def test_a_caller_that_goes_away_does_not_cancel_the_shared_call_for_the_others(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    tenants: tuple[str, str],
    cached_config: str,
    emulators: Emulators,
) -> None:
    prompt = unique("a quitter")
    emulators.stability.inject(Fault.latency(2000))
    trace_id = unique("leaves")
    request = build_generate_request(prompt=prompt, config_id=cached_config, trace_id=trace_id)
    with grpc.insecure_channel(gateway.grpc_target) as channel, ThreadPoolExecutor(1) as pool:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        leader = stub.GenerateImage.future(
            request, metadata=(("authorization", f"Bearer {tenants[0]}"),), timeout=TIMEOUT
        )
        eventually(lambda: emulators.stability.requests)  # the leader's call is upstream
        with httpx.Client(base_url=gateway.rest_base_url, timeout=TIMEOUT) as stays:
            follower = pool.submit(post, stays, tenants[0], cached_config, prompt)
            eventually(lambda: gauge(gateway, "imagegateway_in_flight_requests") >= 2)
            time.sleep(0.2)  # the follower is inside the gateway; give it a moment to join the call
            leader.cancel()
            response = follower.result(TIMEOUT)
    assert response.headers["x-portkey-cache-status"] == "HIT"
    assert len(emulators.stability.requests) == 1
    assert log_of(admin, trace_id).status_code == 499


# -- metrics and errors ------------------------------------------------------------------------------


def test_cache_statuses_are_counted_in_metrics(
    rest: httpx.Client,
    gateway: GatewayThread,
    tenants: tuple[str, str],
    cached_config: str,
    seed: Seed,
    emulators: Emulators,
) -> None:
    before = {status: metric(gateway, status) for status in ("HIT", "MISS", "REFRESH", "DISABLED")}
    prompt = unique("counted")
    post(rest, tenants[0], cached_config, prompt)
    post(rest, tenants[0], cached_config, prompt)
    post(rest, tenants[0], cached_config, prompt, headers={"x-portkey-cache-force-refresh": "true"})
    post(rest, tenants[0], seed.config_id, prompt)
    after = {status: metric(gateway, status) for status in before}
    assert {s: after[s] - before[s] for s in before} == {"HIT": 1, "MISS": 1, "REFRESH": 1, "DISABLED": 1}


def test_a_bad_force_refresh_header_is_a_400_naming_it(
    rest: httpx.Client, tenants: tuple[str, str], cached_config: str, emulators: Emulators
) -> None:
    response = post(rest, tenants[0], cached_config, "p", headers={"x-portkey-cache-force-refresh": "maybe"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "x-portkey-cache-force-refresh"
    assert upstream_calls(emulators) == 0


def test_semantic_cache_mode_is_refused_naming_cache_mode(
    rest: httpx.Client, admin: ImageGatewayClient, tenants: tuple[str, str], seed: Seed
) -> None:
    config = chain(seed, cache={"mode": "semantic"})
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_config(unique("semantic"), config)
    assert info.value.error_info is not None and info.value.error_info.metadata["param"] == "cache.mode"
    response = rest.post(
        GENERATIONS,
        json={"prompt": "p"},
        headers={"x-portkey-api-key": tenants[0], "x-portkey-config": json.dumps(config)},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "cache.mode"
