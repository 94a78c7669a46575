"""A caller that goes away cancels the upstream work, and the request is still logged once."""

from __future__ import annotations

import time
import uuid

import grpc

from imagegateway import ImageGatewayClient
from imagegateway.v1 import images_pb2, service_pb2_grpc
from tests.conftest import Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread


def test_cancelled_grpc_call_is_logged_as_499(
    gateway: GatewayThread, seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.latency(5000))
    trace_id = "cancel-" + uuid.uuid4().hex
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="slow", model="stable-diffusion-v1-6"),
        routing=images_pb2.Routing(virtual_key=seed.stability_vk),
        trace_id=trace_id,
    )
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        future = stub.GenerateImage.future(
            request, metadata=(("authorization", f"Bearer {gateway.admin_key}"),), timeout=30
        )
        eventually(lambda: emulators.stability.requests)
        future.cancel()
    (entry,) = eventually(lambda: admin.list_logs(trace_id=trace_id).logs)
    assert entry.status_code == 499
    assert not emulators.openai.requests


def test_grpc_deadline_bounds_the_whole_chain(
    gateway: GatewayThread, seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.latency(5000))
    trace_id = "deadline-" + uuid.uuid4().hex
    try:
        admin.generate_image(prompt="slow", config_id=seed.config_id, trace_id=trace_id, timeout=1.0)
    except Exception as exc:  # the client raises DeadlineExceededError
        assert "DEADLINE" in type(exc).__name__.upper() or "deadline" in str(exc).lower()
    else:
        raise AssertionError("a 5 s upstream cannot answer within a 1 s deadline")
    (entry,) = eventually(lambda: admin.list_logs(trace_id=trace_id).logs)
    assert entry.status_code in (499, 504)


def test_a_cancelled_fallback_logs_the_failed_attempt_and_the_one_in_flight(
    gateway: GatewayThread, seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.latency(30_000))
    trace_id = "cancel-fallback-" + uuid.uuid4().hex
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="slow"),
        routing=images_pb2.Routing(config_id=seed.config_id),
        trace_id=trace_id,
    )
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        future = stub.GenerateImage.future(
            request, metadata=(("authorization", f"Bearer {gateway.admin_key}"),), timeout=60
        )
        eventually(lambda: emulators.openai.requests)
        time.sleep(0.2)  # a floor for the cut-short attempt's latency
        future.cancel()
    (entry,) = eventually(lambda: admin.list_logs(trace_id=trace_id).logs)
    # Nothing served, so no fallback (issue 14: fallback_used means another target served).
    assert (entry.status_code, entry.served_target, entry.fallback_used) == (499, "", False)
    assert (entry.provider, entry.model) == ("openai", "dall-e-3")  # the target it was on when the caller left
    failed, cut = entry.attempts
    assert (failed.target, failed.provider, failed.status_code, failed.error_kind) == (
        "config.targets[0]",
        "stability-ai",
        503,
        images_pb2.ERROR_KIND_UNAVAILABLE,
    )
    assert (cut.target, cut.provider, cut.model, cut.status_code, cut.error_kind, cut.error) == (
        "config.targets[1]",
        "openai",
        "dall-e-3",
        499,
        images_pb2.ERROR_KIND_TIMEOUT,
        "the caller cancelled the request",
    )
    assert 200 <= cut.latency_ms < 30_000  # cut short well before the upstream would have answered
    assert admin.get_log(entry.id).attempts == entry.attempts
