"""Chaos: 5,000 requests through a fallback whose primary fails 30% of the time in every way it can.

The primary (Stability) injects a seeded mix of 5xx, 429, connection resets, timeouts, malformed and
truncated bodies and content filtering (an HTTP 200 with a blurred image, which must count as a
failure); the secondary (OpenAI) is healthy. Half the requests come over REST, half over gRPC, many
at once, to a gateway of their own with circuit breakers off, so every request tries the primary.

Because the fault schedule is seeded and every request makes exactly one primary call, the number of
calls that got each fault is known in advance, whatever order they arrived in. So the test can say
not just "everything succeeded" but: exactly the clean primary answers were served by the primary
(a filtered image served would be one too many), exactly the content-filtered ones show up as
content-policy fallbacks, the log has one record per request, and the metrics count the same.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import AsyncImageGatewayClient, ImageGatewayClient
from imagegateway.v1 import images_pb2, logs_pb2
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway
from tests.integration.test_grpc_api import prometheus_samples

REQUESTS = 5_000
CONCURRENCY = 48
FAULT_RATE = 0.3
SEED = 20_240_501
# Generous for a loaded 2-core machine (a clean answer must never miss it), short enough for a quick run.
PRIMARY_TIMEOUT_MS = 2_000
# Longer than the primary's request_timeout: the gateway gives up and falls back (recorded as a 408).
SLOW = Fault.latency(3_000)
FAULTS = (
    Fault.status(500),
    Fault.status(503),
    Fault.rate_limited(),
    Fault.reset(),
    SLOW,
    Fault.malformed(),
    Fault.truncated(),
    Fault.content_filter(),
)


def expected_faults(count: int) -> collections.Counter[str]:
    """What the emulator's seeded schedule hands the first ``count`` calls (tests/emulators/faults.py)."""
    rng = random.Random(SEED)
    drawn: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        if rng.random() < FAULT_RATE:
            fault = rng.choice(FAULTS)
            drawn["timeout" if fault is SLOW else fault.kind] += 1
        else:
            drawn["none"] += 1
    return drawn


@pytest.fixture(scope="module")
def chaos(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[GatewayThread, StabilityEmulator, OpenAIEmulator, str]]:
    with (
        StabilityEmulator.running_in_thread(api_key=STABILITY_SECRET, max_recorded=REQUESTS + 100) as primary,
        OpenAIEmulator.running_in_thread(api_key=OPENAI_SECRET, max_recorded=REQUESTS + 100) as secondary,
        running_gateway(
            Path(tmp_path_factory.mktemp("chaos")), breaker_consecutive_failures=0, breaker_failure_rate=0.0
        ) as gateway,
        ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin,
    ):
        stability = admin.create_virtual_key(
            "chaos-stability", "stability-ai", STABILITY_SECRET, base_url=primary.base_url
        )
        openai = admin.create_virtual_key("chaos-openai", "openai", OPENAI_SECRET, base_url=secondary.base_url)
        config = admin.create_config(
            "chaos",
            {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {
                        "virtual_key": stability.id,
                        "request_timeout": PRIMARY_TIMEOUT_MS,
                        "override_params": {"model": "stable-diffusion-v1-6"},
                    },
                    {
                        "virtual_key": openai.id,
                        "request_timeout": 30_000,
                        "override_params": {"model": "dall-e-2", "size": "256x256"},
                    },
                ],
            },
        )
        yield gateway, primary, secondary, config.id


async def _rest(client: httpx.AsyncClient, gateway: GatewayThread, config_id: str, trace_id: str) -> str:
    response = await client.post(
        f"{gateway.rest_base_url}/images/generations",
        headers={"x-portkey-api-key": gateway.admin_key, "x-portkey-config": config_id, "x-portkey-trace-id": trace_id},
        json={"prompt": "a lighthouse in a storm", "response_format": "b64_json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["b64_json"]
    return response.headers["x-portkey-provider"]


async def _grpc(client: AsyncImageGatewayClient, config_id: str, trace_id: str) -> str:
    response = await client.generate_image(
        prompt="a lighthouse in a storm", config_id=config_id, trace_id=trace_id, timeout=60
    )
    assert response.images and response.images[0].data
    return response.outcome.provider


async def _run_all(gateway: GatewayThread, config_id: str, trace_ids: list[str]) -> list[str]:
    limit = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with (
        httpx.AsyncClient(timeout=60, limits=limits) as rest,
        AsyncImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as grpc_client,
    ):

        async def one(index: int, trace_id: str) -> str:
            async with limit:
                if index % 2:
                    return await _grpc(grpc_client, config_id, trace_id)
                return await _rest(rest, gateway, config_id, trace_id)

        return await asyncio.gather(*(one(i, trace_id) for i, trace_id in enumerate(trace_ids)))


def _all_logs(admin: ImageGatewayClient, config_id: str) -> list[logs_pb2.RequestLog]:
    return list(admin.iter_logs(config_id=config_id, page_size=200))


def test_fallback_survives_a_primary_failing_thirty_percent_of_the_time(
    chaos: tuple[GatewayThread, StabilityEmulator, OpenAIEmulator, str],
) -> None:
    gateway, primary, secondary, config_id = chaos
    primary.set_fault_rate(FAULT_RATE, FAULTS, seed=SEED)
    run = uuid.uuid4().hex[:8]
    trace_ids = [f"chaos-{run}-{i}" for i in range(REQUESTS)]

    started = time.monotonic()
    served_by = asyncio.run(_run_all(gateway, config_id, trace_ids))
    elapsed = time.monotonic() - started

    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        deadline = time.monotonic() + 60
        while len(logs := _all_logs(admin, config_id)) < REQUESTS and time.monotonic() < deadline:
            time.sleep(0.2)  # written in batches, off the request path
    assert sorted(entry.trace_id for entry in logs) == sorted(trace_ids), "exactly one record per request"
    why = collections.Counter(
        f"{e.attempts[0].status_code} {e.attempts[0].error[:70]}" for e in logs if e.fallback_used
    )

    # The emulator draws a fault for each request it reads. A request the gateway gave up on before the
    # emulator read it (possible on a loaded machine) drew nothing and fell back as a timeout.
    reached = len(primary.requests)
    unreached = REQUESTS - reached
    assert unreached <= REQUESTS // 100, f"one primary call per request; primary failures: {why}"
    faults = expected_faults(reached)
    failed_primary = REQUESTS - faults["none"]
    # Only clean primary answers were served by the primary: a filtered (or broken) one served would add one.
    assert collections.Counter(served_by) == {"stability-ai": faults["none"], "openai": failed_primary}, why
    assert len(secondary.requests) == failed_primary
    assert all(entry.status_code == 200 for entry in logs)

    fell_back = [entry for entry in logs if entry.fallback_used]
    assert len(fell_back) == failed_primary
    for entry in fell_back:
        first, last = entry.attempts[0], entry.attempts[-1]
        assert (first.provider, last.provider, entry.provider) == ("stability-ai", "openai", "openai")
        assert first.error_kind != images_pb2.ERROR_KIND_UNSPECIFIED and not last.error_kind
    filtered = [e for e in fell_back if e.attempts[0].error_kind == images_pb2.ERROR_KIND_CONTENT_POLICY]
    timed_out = [e for e in fell_back if e.attempts[0].status_code == 408]
    assert len(filtered) == faults["content_filter"], "every content-filtered answer fell back"
    assert len(timed_out) == faults["timeout"] + unreached

    samples = prometheus_samples(httpx.get(gateway.metrics_url, timeout=10).text)

    def total(name: str, **labels: str) -> float:
        return sum(
            value
            for sample, got, value in samples
            if sample == name and all(got.get(k) == v for k, v in labels.items())
        )

    assert total("imagegateway_requests_total", outcome="success", config=config_id) == REQUESTS
    assert total("imagegateway_requests_total", outcome="failure") == 0
    assert total("imagegateway_requests_total", transport="grpc", config=config_id) == REQUESTS // 2
    assert total("imagegateway_fallbacks_total") == len(fell_back)
    assert total("imagegateway_fallbacks_total", reason="content_policy") == len(filtered)
    assert total("imagegateway_attempts_total", provider="stability-ai") == REQUESTS
    # Not a timing assertion on a noisy machine, only a guard against the run crawling.
    assert elapsed < 240, f"{REQUESTS} requests took {elapsed:.0f} s"
