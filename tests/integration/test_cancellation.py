"""A caller that goes away cancels the upstream work, and the request is still logged once."""

from __future__ import annotations

import uuid

import grpc

from imagegateway import ImageGatewayClient
from imagegateway.v1 import images_pb2, service_pb2_grpc
from tests.conftest import Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread


def test_cancelled_grpc_call_is_logged_as_499(gateway: GatewayThread, seed: Seed, emulators: Emulators,
                                             admin: ImageGatewayClient) -> None:
    emulators.stability.inject(Fault.latency(5000))
    trace_id = "cancel-" + uuid.uuid4().hex
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="slow", model="stable-diffusion-v1-6"),
        routing=images_pb2.Routing(virtual_key=seed.stability_vk), trace_id=trace_id)
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        future = stub.GenerateImage.future(request, metadata=(("authorization", f"Bearer {gateway.admin_key}"),),
                                           timeout=30)
        eventually(lambda: emulators.stability.requests)
        future.cancel()
    (entry,) = eventually(lambda: admin.list_logs(trace_id=trace_id).logs)
    assert entry.status_code == 499
    assert not emulators.openai.requests


def test_grpc_deadline_bounds_the_whole_chain(gateway: GatewayThread, seed: Seed, emulators: Emulators,
                                              admin: ImageGatewayClient) -> None:
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
