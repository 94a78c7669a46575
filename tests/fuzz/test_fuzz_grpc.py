"""Fuzzing the gRPC API: random requests for every RPC end with a clean status, never INTERNAL.

Requests are built from the message descriptors (``proto_inputs``) and sent over a real channel to
the fuzz gateway, whose upstreams are healthy emulators. A call either succeeds or fails with a
status that says what was wrong with the request (INVALID_ARGUMENT, NOT_FOUND, ...), carrying the
``google.rpc`` details every gateway error has. INTERNAL or UNKNOWN would be the gateway crashing,
UNAVAILABLE or DEADLINE_EXCEEDED a hang or an upstream it should not have reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import given
from hypothesis import strategies as st

from imagegateway.v1 import configs_pb2, images_pb2, keys_pb2, logs_pb2
from tests.conftest import eventually
from tests.fuzz.budget import cases
from tests.fuzz.choosers import RandomChooser
from tests.fuzz.proto_inputs import SERVICE, FieldHints, GrpcCall, grpc_call, message_class
from tests.fuzz.rest_inputs import RestContext
from tests.fuzz.routes import FuzzTargets
from tests.fuzz.strategies import drawn, first_failure
from tests.harness import GatewayThread
from tests.integration.test_grpc_api import prometheus_samples

BATCH = 20
CALL_TIMEOUT = 15.0
CLEAN_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)


def _serialize(message: Any) -> bytes:
    # Raw bytes pass through: some messages cannot be built in Python at all (too deep to construct).
    return message if isinstance(message, bytes) else message.SerializeToString()  # type: ignore[no-any-return]


def _length_delimited(field_number: int, payload: bytes) -> bytes:
    return _encode_varint(field_number << 3 | 2) + _encode_varint(len(payload)) + payload


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def deep_config_bytes(depth: int, leaf: configs_pb2.RoutingConfig) -> bytes:
    """A RoutingConfig nested ``depth`` levels deep, encoded by hand (protobuf refuses to build it)."""
    strategy = _length_delimited(1, configs_pb2.Strategy(mode="fallback").SerializeToString())
    payload = leaf.SerializeToString()
    for _ in range(depth):
        payload = strategy + _length_delimited(2, payload)  # RoutingConfig.strategy = 1, .targets = 2
    return payload


class FuzzChannel:
    """One channel to the fuzz gateway and the callables for every RPC of the service."""

    def __init__(self, gateway: GatewayThread, generate_key: str) -> None:
        limit = 64 * 1024 * 1024
        self._channel = grpc.insecure_channel(
            gateway.grpc_target,
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        )
        self._keys = {"admin": gateway.admin_key, "generate": generate_key, "wrong": "igw_wrong_key_0123456789"}
        self._methods: dict[str, Any] = {}
        self._streams_out: set[str] = set()
        for method in SERVICE.methods:
            path = f"/{SERVICE.full_name}/{method.name}"
            response = message_class(method.output_type)
            factory = {
                (False, False): self._channel.unary_unary,
                (False, True): self._channel.unary_stream,
                (True, False): self._channel.stream_unary,
                (True, True): self._channel.stream_stream,
            }[(method.client_streaming, method.server_streaming)]
            if method.server_streaming:
                self._streams_out.add(method.name)
            self._methods[method.name] = factory(
                path, request_serializer=_serialize, response_deserializer=response.FromString
            )

    def call(self, call: GrpcCall) -> None:
        metadata = () if call.auth == "none" else (("authorization", f"Bearer {self._keys[call.auth]}"),)
        rpc = self._methods[call.method]
        request = iter(call.request) if isinstance(call.request, tuple) else call.request
        result = rpc(request, metadata=metadata, timeout=CALL_TIMEOUT)
        if call.method in self._streams_out:
            for _ in result:
                pass

    def close(self) -> None:
        self._channel.close()


@pytest.fixture(scope="module")
def channel(fuzz_gateway: GatewayThread, rest_context: RestContext) -> Iterator[FuzzChannel]:
    opened = FuzzChannel(fuzz_gateway, rest_context.generate_key)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def hints(fuzz_targets: FuzzTargets) -> FieldHints:
    return FieldHints(fuzz_targets)


def check_call(channel: FuzzChannel, call: GrpcCall) -> None:
    try:
        channel.call(call)
    except grpc.RpcError as error:
        code = error.code()  # type: ignore[attr-defined]
        assert code in CLEAN_CODES, f"{code}: {error.details()}"  # type: ignore[attr-defined]
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        assert status is not None, "every gateway error carries google.rpc details"
        infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert infos, "every gateway error names its reason in an ErrorInfo"


@cases(2_500)
@given(data=st.data())
def test_fuzzed_rpcs_end_with_a_clean_status(channel: FuzzChannel, hints: FieldHints, data: st.DataObject) -> None:
    check_call(channel, data.draw(drawn(partial(grpc_call, hints=hints)), label="call"))


@cases(300)
@given(seed=st.integers(0, 2**64 - 1))
def test_bulk_fuzzed_rpcs_end_with_a_clean_status(channel: FuzzChannel, hints: FieldHints, seed: int) -> None:
    chooser = RandomChooser(seed)
    first_failure([grpc_call(chooser, hints) for _ in range(BATCH)], partial(check_call, channel))


def test_after_the_fuzzed_uploads_the_upload_budget_is_whole_again(fuzz_gateway: GatewayThread) -> None:
    # Every fuzzed upload ended (served, refused, failed): none may have kept any of the budget.
    def whole() -> bool:
        text = httpx.get(fuzz_gateway.metrics_url, timeout=10).text
        (value,) = [v for name, _, v in prometheus_samples(text) if name == "imagegateway_upload_memory_reserved_bytes"]
        return value == 0

    assert eventually(whole)


def test_known_hard_messages_end_with_a_clean_status(channel: FuzzChannel, fuzz_targets: FuzzTargets) -> None:
    # Past protobuf's parse depth limit of 100: the server cannot even decode it.
    deep = deep_config_bytes(150, configs_pb2.RoutingConfig(virtual_key=fuzz_targets.openai_vk))
    just_parsable = deep_config_bytes(45, configs_pb2.RoutingConfig(virtual_key=fuzz_targets.openai_vk))
    far_future = logs_pb2.ListLogsRequest()
    far_future.start_time.seconds = 2**62
    nan_weight = configs_pb2.RoutingConfig(
        strategy=configs_pb2.Strategy(mode="loadbalance"),
        targets=[configs_pb2.RoutingConfig(virtual_key=fuzz_targets.openai_vk, weight=float("nan"))],
    )
    nan_extra = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="a"),
        routing=images_pb2.Routing(virtual_key=fuzz_targets.openai_vk),
    )
    nan_extra.parameters.extra_params.update({"steps": float("nan")})
    for call in [
        GrpcCall("GenerateImage", nan_extra, "admin"),
        GrpcCall(
            "CreateVirtualKey",
            keys_pb2.CreateVirtualKeyRequest(name="n", provider="openai", secret="s", base_url="http://127.0.0.1[9"),
            "admin",
        ),
        GrpcCall("ValidateConfig", _length_delimited(1, deep), "admin"),  # type: ignore[arg-type]
        GrpcCall("ValidateConfig", _length_delimited(1, just_parsable), "admin"),  # type: ignore[arg-type]
        GrpcCall("CreateConfig", _length_delimited(2, just_parsable), "admin"),  # type: ignore[arg-type]
        GrpcCall("ListLogs", far_future, "admin"),
        GrpcCall("ValidateConfig", configs_pb2.ValidateConfigRequest(config=nan_weight), "admin"),
        GrpcCall(
            "GenerateImage",
            images_pb2.GenerateImageRequest(
                parameters=images_pb2.ImageParameters(prompt="a", cfg_scale=float("nan")),
                routing=images_pb2.Routing(virtual_key=fuzz_targets.stability_vk),
            ),
            "admin",
        ),
    ]:
        check_call(channel, call)
