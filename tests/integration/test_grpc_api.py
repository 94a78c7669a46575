"""The gRPC API over real sockets: auth and scopes, image RPCs, configs, keys, logs, health, secrets.

Tests call the session's gateway with the hand-written ``ImageGatewayClient`` (decoded rich errors)
or the generated stub where the raw wire matters, against the OpenAI and Stability emulators.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from imagegateway import (
    AlreadyExistsError,
    ImageGatewayClient,
    ImageGatewayError,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
)
from imagegateway.v1 import configs_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2, service_pb2_grpc
from tests.conftest import (
    COOKBOOK_CONFIG,
    OPENAI_SECRET,
    STABILITY_SECRET,
    Emulators,
    Seed,
    eventually,
)
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread

SERVICE = "imagegateway.v1.ImageGateway"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RPC_TIMEOUT = 30.0
ADMIN_METHODS = (
    "CreateConfig",
    "GetConfig",
    "ListConfigs",
    "UpdateConfig",
    "DeleteConfig",
    "CreateVirtualKey",
    "GetVirtualKey",
    "ListVirtualKeys",
    "RotateVirtualKey",
    "DeleteVirtualKey",
    "CreateApiKey",
    "ListApiKeys",
    "RevokeApiKey",
)
# Secrets this module hands to the gateway; none may leak into responses, disk or metrics.
ROTATED_SECRET = "sk-test-rotated-secret-5f2b8c1d9e7a"
INLINE_CONFIG_SECRET = "sk-test-inline-config-secret-81c4e2"
SEALED_SECRET = "sk-test-sealed-at-rest-3a9d0f6b2e"


# -- fixtures and helpers ---------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> tuple[str, str]:
    """A `generate`-scope gateway key for this module: (key id, plaintext)."""
    created = admin.create_api_key(unique("grpc-generate"), "generate")
    return created.api_key.id, created.key


@pytest.fixture(scope="module")
def generator(gateway: GatewayThread, generate_key: tuple[str, str]) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=generate_key[1], timeout=RPC_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def channel(gateway: GatewayThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.grpc_target) as ch:
        yield ch


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def call_every_method(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], names: tuple[str, ...] | None = None
) -> dict[str, grpc.StatusCode]:
    """Calls each ImageGateway RPC with an empty request; returns the status code of each."""
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    service = service_pb2.DESCRIPTOR.services_by_name["ImageGateway"]
    codes: dict[str, grpc.StatusCode] = {}
    for method in service.methods:
        if names is not None and method.name not in names:
            continue
        request = message_factory.GetMessageClass(method.input_type)()
        try:
            # A client-streaming RPC (EditImageUpload) takes its requests as an iterator.
            sent = iter([request]) if method.client_streaming else request
            answer = getattr(stub, method.name)(sent, metadata=metadata, timeout=RPC_TIMEOUT)
            if method.server_streaming:
                list(answer)
            codes[method.name] = grpc.StatusCode.OK
        except grpc.RpcError as err:
            codes[method.name] = err.code()
    return codes


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def prometheus_samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in Prometheus text format."""
    samples = []
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and not line.startswith("#"):
            labels = dict(_LABEL.findall(match["labels"] or ""))
            samples.append((match["name"], labels, float(match["value"])))
    return samples


def first_log(client: ImageGatewayClient, trace_id: str) -> logs_pb2.RequestLog:
    return eventually(lambda: next(iter(client.list_logs(trace_id=trace_id).logs), None))


def param_of(error: ImageGatewayError) -> str:
    info = error.error_info
    assert info is not None, "every error carries an ErrorInfo"
    assert info.domain and info.reason
    return str(info.metadata.get("param", ""))


def cookbook_with_failing_first(seed: Seed, **first: object) -> dict[str, object]:
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"virtual_key": seed.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}, **first},
            {"virtual_key": seed.openai_vk, "override_params": {"model": "dall-e-3"}},
        ],
    }


# -- authentication and scopes ----------------------------------------------------------------------


def test_every_rpc_without_a_key_is_unauthenticated(channel: grpc.Channel, emulators: Emulators) -> None:
    codes = call_every_method(channel, ())
    assert len(codes) == len(service_pb2.DESCRIPTOR.services_by_name["ImageGateway"].methods)
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes
    assert emulators.stability.requests == [] and emulators.openai.requests == []


@pytest.mark.parametrize(
    "metadata",
    [
        bearer("igw_wrong_key_0123456789abcdefghijklmnopqrstuvwx"),
        (("x-api-key", "igw_wrong_key_0123456789abcdefghijklmnopqrstuvwx"),),
        bearer("short"),
        (("authorization", "Basic dXNlcjpwYXNz"),),
    ],
    ids=["wrong_bearer", "wrong_x_api_key", "malformed", "not_bearer"],
)
def test_every_rpc_with_a_wrong_key_is_unauthenticated(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]
) -> None:
    codes = call_every_method(channel, metadata)
    assert set(codes.values()) == {grpc.StatusCode.UNAUTHENTICATED}, codes


def test_generate_key_calling_any_admin_rpc_is_permission_denied(
    channel: grpc.Channel, generate_key: tuple[str, str]
) -> None:
    codes = call_every_method(channel, bearer(generate_key[1]), ADMIN_METHODS)
    assert set(codes) == set(ADMIN_METHODS)
    assert set(codes.values()) == {grpc.StatusCode.PERMISSION_DENIED}, codes


def test_generate_key_may_call_image_and_log_rpcs(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    generator.list_logs(page_size=1)
    generator.validate_config(COOKBOOK_CONFIG)
    response = generator.generate_image(prompt="a kite", config_id=seed.config_id)
    assert response.images


def test_gateway_key_is_accepted_as_x_api_key_metadata(channel: grpc.Channel, generate_key: tuple[str, str]) -> None:
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    stub.ListLogs(
        logs_pb2.ListLogsRequest(page_size=1), metadata=(("x-api-key", generate_key[1]),), timeout=RPC_TIMEOUT
    )


def test_revoked_key_is_unauthenticated(gateway: GatewayThread, admin: ImageGatewayClient) -> None:
    created = admin.create_api_key(unique("grpc-revoke"), "admin")
    with ImageGatewayClient(gateway.grpc_target, api_key=created.key) as client:
        client.list_configs(page_size=1)
        admin.revoke_api_key(created.api_key.id)
        with pytest.raises(UnauthenticatedError):
            client.list_configs(page_size=1)
        with pytest.raises(UnauthenticatedError):
            client.list_logs(page_size=1)


# -- GenerateImage and StreamGenerateImage ----------------------------------------------------------


def test_generate_image_through_the_cookbook_config_returns_raw_png_bytes_and_outcome(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    trace_id = unique("grpc-ok")
    response = generator.generate_image(prompt="a red kite over hills", config_id=seed.config_id, trace_id=trace_id)

    assert len(response.images) == 1
    image = response.images[0]
    assert image.data.startswith(PNG_SIGNATURE)  # raw bytes, never base64
    assert image.mime_type == "image/png"
    assert (image.width, image.height) == (512, 512)  # stable-diffusion-v1-6's default
    assert image.index == 0
    assert response.created > 0
    outcome = response.outcome
    assert outcome.trace_id == trace_id
    assert outcome.log_id
    assert (outcome.provider, outcome.model) == ("stability-ai", "stable-diffusion-v1-6")
    assert outcome.served_target == "config.targets[0]"
    assert not outcome.fallback_used
    assert outcome.retry_attempt_count == 0
    assert outcome.cache_status == images_pb2.CACHE_STATUS_DISABLED
    assert [(a.target, a.provider, a.model, a.status_code, a.error_kind) for a in outcome.attempts] == [
        ("config.targets[0]", "stability-ai", "stable-diffusion-v1-6", 200, images_pb2.ERROR_KIND_UNSPECIFIED)
    ]
    sent = emulators.stability.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {STABILITY_SECRET}"
    assert sent.json is not None and sent.json["text_prompts"][0]["text"] == "a red kite over hills"


@pytest.mark.parametrize(
    ("fault", "status", "kind"),
    [
        (Fault.status(503), 503, images_pb2.ERROR_KIND_UNAVAILABLE),
        (Fault.reset(), 502, images_pb2.ERROR_KIND_UNAVAILABLE),
        (Fault.content_filter(), 400, images_pb2.ERROR_KIND_CONTENT_POLICY),
    ],
    ids=["upstream_503", "connection_reset", "content_filtered"],
)
def test_generate_image_falls_back_to_dall_e_3_when_stability_fails(
    generator: ImageGatewayClient,
    seed: Seed,
    emulators: Emulators,
    fault: Fault,
    status: int,
    kind: images_pb2.ErrorKind.ValueType,
) -> None:
    emulators.stability.inject(fault)
    response = generator.generate_image(prompt="a red kite", config_id=seed.config_id)

    assert len(response.images) == 1
    image = response.images[0]
    assert image.data.startswith(PNG_SIGNATURE)
    assert (image.mime_type, image.width, image.height) == ("image/png", 1024, 1024)
    assert image.revised_prompt
    outcome = response.outcome
    assert (outcome.provider, outcome.model) == ("openai", "dall-e-3")
    assert outcome.served_target == "config.targets[1]"
    assert outcome.fallback_used
    assert [(a.target, a.provider, a.status_code) for a in outcome.attempts] == [
        ("config.targets[0]", "stability-ai", status),
        ("config.targets[1]", "openai", 200),
    ]
    assert outcome.attempts[0].error_kind == kind
    assert outcome.attempts[0].error
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_SECRET}"


def test_generate_image_sends_the_trace_id_in_initial_metadata(
    channel: grpc.Channel, generate_key: tuple[str, str], seed: Seed, emulators: Emulators
) -> None:
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="a kite"),
        routing=images_pb2.Routing(config_id=seed.config_id),
        trace_id="grpc-trace-in-metadata",
    )
    _, call = stub.GenerateImage.with_call(request, metadata=bearer(generate_key[1]), timeout=RPC_TIMEOUT)
    assert ("x-portkey-trace-id", "grpc-trace-in-metadata") in tuple(call.initial_metadata())


def test_stream_generate_image_yields_one_image_per_message_with_outcome_on_the_last(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    messages = list(generator.stream_generate_image(prompt="two kites", n=2, config_id=seed.config_id))

    assert len(messages) == 2
    assert [m.image.index for m in messages] == [0, 1]
    for message in messages:
        assert message.image.data.startswith(PNG_SIGNATURE)
        assert message.image.mime_type == "image/png"
        assert (message.image.width, message.image.height) == (512, 512)
    assert not messages[0].HasField("outcome")
    assert messages[-1].HasField("outcome")
    outcome = messages[-1].outcome
    assert outcome.provider == "stability-ai" and not outcome.fallback_used
    assert len(outcome.attempts) == 1
    sent = emulators.stability.requests
    assert len(sent) == 1 and sent[0].json is not None and sent[0].json["samples"] == 2


def test_stream_generate_image_falls_back_and_reports_it(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(500))
    messages = list(generator.stream_generate_image(prompt="a kite", config_id=seed.config_id))

    assert len(messages) == 1
    assert messages[0].image.data.startswith(PNG_SIGNATURE)
    assert messages[0].outcome.fallback_used
    assert messages[0].outcome.served_target == "config.targets[1]"


def test_generate_image_with_a_bare_provider_and_custom_host(
    generator: ImageGatewayClient, emulators: Emulators
) -> None:
    response = generator.generate_image(
        prompt="a kite",
        provider="open-ai",
        provider_api_key=OPENAI_SECRET,
        custom_host=emulators.openai.base_url,
        model="dall-e-2",
        size="256x256",
    )

    assert response.outcome.provider == "openai"
    assert (response.images[0].width, response.images[0].height) == (256, 256)
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_SECRET}"


# -- invalid arguments and failures -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"prompt": ""}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"prompt": "a kite", "n": 11}, "n"),
        ({"prompt": "a kite", "size": "big"}, "size"),
    ],
    ids=["empty_prompt", "blank_prompt", "n_11", "bad_size"],
)
def test_invalid_parameters_are_invalid_argument_naming_the_field(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators, fields: dict[str, object], param: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        generator.generate_image(config_id=seed.config_id, **fields)  # type: ignore[arg-type]

    assert param_of(info.value) == param
    assert emulators.stability.requests == []


@pytest.mark.parametrize(
    ("config", "param"),
    [
        (
            {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {"virtual_key": "a"},
                    {"strategy": {"mode": "roundrobin"}, "targets": [{"virtual_key": "b"}]},
                ],
            },
            "targets[1].strategy.mode",
        ),
        ({"strategy": {"mode": "loadbalance"}, "targets": [{"virtual_key": "a", "weight": 0}]}, "targets"),
        (
            {
                "strategy": {"mode": "fallback"},
                "targets": [{"virtual_key": "a"}, {"provider": "dall-e-land", "api_key": "sk-x"}],
            },
            "targets[1].provider",
        ),
        ({"virtual_key": "a", "retry": {"attempts": 99}}, "retry.attempts"),
        ({"virtual_key": "a", "request_timeout": -5}, "request_timeout"),
        ({"virtual_key": "a", "override_params": {"n": "two"}}, "override_params.n"),
    ],
    ids=[
        "nested_mode",
        "zero_weights",
        "unknown_provider",
        "retry_attempts",
        "negative_timeout",
        "override_param_type",
    ],
)
def test_bad_inline_config_is_invalid_argument_naming_the_field_path(
    generator: ImageGatewayClient, emulators: Emulators, config: dict[str, object], param: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        generator.generate_image(prompt="a kite", config=config)
    assert param_of(info.value) == param
    assert param in info.value.message

    with pytest.raises(InvalidArgumentError) as validated:
        generator.validate_config(config)
    assert param_of(validated.value) == param


def test_missing_parameters_message_is_invalid_argument(
    channel: grpc.Channel, generate_key: tuple[str, str], seed: Seed
) -> None:
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    request = images_pb2.GenerateImageRequest(routing=images_pb2.Routing(config_id=seed.config_id))
    with pytest.raises(grpc.RpcError) as info:
        stub.GenerateImage(request, metadata=bearer(generate_key[1]), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_config_id_is_not_found(generator: ImageGatewayClient) -> None:
    with pytest.raises(NotFoundError):
        generator.generate_image(prompt="a kite", config_id="pc-no-such-config")


def test_all_targets_503_is_unavailable_with_a_failure_detail_listing_attempts(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    trace_id = unique("grpc-all-failed")
    with pytest.raises(ImageGatewayError) as info:
        generator.generate_image(prompt="a kite", config_id=seed.config_id, trace_id=trace_id)

    error = info.value
    assert error.code == grpc.StatusCode.UNAVAILABLE
    assert "openai" in error.message
    failure = error.failure
    assert failure is not None
    assert failure.trace_id == trace_id
    assert failure.log_id
    assert failure.http_status == 503
    assert failure.error_kind == images_pb2.ERROR_KIND_UNAVAILABLE
    assert [(a.target, a.provider, a.status_code) for a in error.attempts] == [
        ("config.targets[0]", "stability-ai", 503),
        ("config.targets[1]", "openai", 503),
    ]
    assert error.error_info is not None and error.error_info.metadata["http_status"] == "503"


def test_all_targets_failed_with_content_policy_last_is_invalid_argument(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.reset())
    emulators.openai.inject(Fault.content_filter())
    with pytest.raises(InvalidArgumentError) as info:
        generator.generate_image(prompt="a kite", config_id=seed.config_id)

    failure = info.value.failure
    assert failure is not None
    assert failure.http_status == 400
    assert failure.error_kind == images_pb2.ERROR_KIND_CONTENT_POLICY
    assert [a.status_code for a in info.value.attempts] == [502, 400]
    assert info.value.error_info is not None
    assert info.value.error_info.metadata["code"] == "content_policy_violation"


def test_all_targets_failed_with_rate_limit_last_is_resource_exhausted_with_retry_info(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(500))
    emulators.openai.inject(Fault.rate_limited(retry_after=3))
    with pytest.raises(ImageGatewayError) as info:
        generator.generate_image(prompt="a kite", config_id=seed.config_id)

    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = info.value.detail(error_details_pb2.RetryInfo)
    assert retry is not None and retry.retry_delay.seconds == 3
    assert [a.status_code for a in info.value.attempts] == [500, 429]


def test_per_attempt_timeout_moves_on_and_is_recorded_as_408(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.hang())
    response = generator.generate_image(prompt="a kite", config=cookbook_with_failing_first(seed, request_timeout=300))

    assert response.outcome.fallback_used
    assert response.outcome.attempts[0].status_code == 408
    assert response.outcome.attempts[0].error_kind == images_pb2.ERROR_KIND_TIMEOUT


def test_caller_deadline_shorter_than_the_upstream_is_deadline_exceeded_and_logged_once(
    generator: ImageGatewayClient, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.hang())
    trace_id = unique("deadline")
    with pytest.raises(ImageGatewayError) as info:
        generator.generate_image(prompt="a kite", virtual_key=seed.stability_vk, trace_id=trace_id, timeout=1.5)
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED

    record = first_log(admin, trace_id)
    # The gateway's own deadline check (504) and gRPC cancelling the handler (499) race at the deadline.
    assert record.status_code in (504, 499)
    assert record.error_kind == images_pb2.ERROR_KIND_TIMEOUT


def test_retry_after_longer_than_the_callers_deadline_moves_on_instead_of_waiting(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.rate_limited(retry_after=30))
    config = cookbook_with_failing_first(seed, retry={"attempts": 3, "on_status_codes": [429]})
    response = generator.generate_image(prompt="a kite", config=config, timeout=10.0)

    assert response.outcome.fallback_used
    assert [(a.provider, a.status_code) for a in response.outcome.attempts] == [("stability-ai", 429), ("openai", 200)]
    assert len(emulators.stability.requests) == 1


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({}, "routing"),
        ({"provider": "openai"}, "provider_api_key"),
        ({"provider": "midjourney", "provider_api_key": "sk-x"}, "provider"),
        ({"virtual_key": "x", "custom_host": "https://192.168.1.1"}, "custom_host"),
    ],
    ids=["no_routing", "bare_provider_without_key", "unknown_provider", "private_custom_host"],
)
def test_bad_routing_is_invalid_argument_naming_the_field(
    generator: ImageGatewayClient, emulators: Emulators, fields: dict[str, str], param: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        generator.generate_image(prompt="a kite", **fields)  # type: ignore[arg-type]
    assert param_of(info.value) == param
    assert emulators.openai.requests == [] and emulators.stability.requests == []


# -- configs --------------------------------------------------------------------------------------


def single_openai(seed: Seed, model: str) -> dict[str, object]:
    return {"virtual_key": seed.openai_vk, "override_params": {"model": model}}


def test_config_create_get_update_versions_and_delete(
    admin: ImageGatewayClient, generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    name = unique("versions")
    created = admin.create_config(name, single_openai(seed, "dall-e-2"))
    assert re.fullmatch(r"[\w-]+", created.id)
    assert (created.name, created.version) == (name, 1)
    assert created.config.override_params["model"] == "dall-e-2"

    fetched = admin.get_config(created.id)
    assert (fetched.id, fetched.version, fetched.config) == (created.id, 1, created.config)

    updated = admin.update_config(created.id, single_openai(seed, "dall-e-3"))
    assert (updated.id, updated.name, updated.version) == (created.id, name, 2)
    assert admin.get_config(created.id).version == 2
    assert admin.get_config(created.id).config.override_params["model"] == "dall-e-3"
    old = admin.get_config(f"{created.id}@1")
    assert old.version == 1 and old.config.override_params["model"] == "dall-e-2"
    assert admin.get_config(created.id, version=1).config == old.config
    assert old.first_create_time == updated.first_create_time

    # Requests use the latest version unless one is named.
    latest = generator.generate_image(prompt="a kite", config_id=created.id)
    assert latest.outcome.model == "dall-e-3"
    pinned = generator.generate_image(prompt="a kite", config_id=f"{created.id}@1")
    assert pinned.outcome.model == "dall-e-2"

    admin.delete_config(created.id)
    with pytest.raises(NotFoundError):
        admin.get_config(created.id)
    with pytest.raises(NotFoundError):
        admin.get_config(f"{created.id}@1")
    with pytest.raises(NotFoundError):
        generator.generate_image(prompt="a kite", config_id=created.id)
    with pytest.raises(NotFoundError):
        admin.delete_config(created.id)


def test_get_config_of_a_version_that_does_not_exist_is_not_found(admin: ImageGatewayClient, seed: Seed) -> None:
    with pytest.raises(NotFoundError):
        admin.get_config(f"{seed.config_id}@99")


def test_update_of_an_unknown_config_is_not_found(admin: ImageGatewayClient, seed: Seed) -> None:
    with pytest.raises(NotFoundError):
        admin.update_config("pc-no-such-config", single_openai(seed, "dall-e-3"))


def test_list_configs_walks_pages_of_one(admin: ImageGatewayClient, seed: Seed) -> None:
    mine = {admin.create_config(unique("page"), single_openai(seed, "dall-e-2")).id for _ in range(3)}
    updated = sorted(mine)[0]
    admin.update_config(updated, single_openai(seed, "dall-e-3"))

    seen: list[str] = []
    token = ""
    for _ in range(1000):
        page = admin.list_configs(page_size=1, page_token=token)
        assert len(page.configs) <= 1
        seen.extend(c.id for c in page.configs)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)), "no config is listed twice"
    assert mine | {seed.config_id} <= set(seen)
    listed = list(admin.iter_configs(page_size=2))
    assert [c.id for c in listed] == seen
    assert next(c for c in listed if c.id == updated).version == 2  # latest versions only
    with pytest.raises(InvalidArgumentError):
        admin.list_configs(page_size=-1)


def test_creating_a_config_under_a_taken_name_is_already_exists_naming_it(admin: ImageGatewayClient) -> None:
    name = unique("taken")
    first = admin.create_config(name, COOKBOOK_CONFIG)
    with pytest.raises(AlreadyExistsError) as info:
        admin.create_config(name, COOKBOOK_CONFIG)
    assert param_of(info.value) == "name" and first.id in info.value.message
    assert admin.update_config(first.id, COOKBOOK_CONFIG).version == 2  # an update is how to change it


def test_config_naming_a_missing_virtual_key_is_refused_at_save_time(admin: ImageGatewayClient, seed: Seed) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"virtual_key": seed.stability_vk}, {"virtual_key": "no-such-virtual-key"}],
    }
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_config(unique("missing-vk"), config)
    assert param_of(info.value) == "targets[1].virtual_key"
    assert "no-such-virtual-key" in info.value.message

    saved = admin.create_config(unique("fine"), COOKBOOK_CONFIG)
    with pytest.raises(InvalidArgumentError) as on_update:
        admin.update_config(saved.id, config)
    assert param_of(on_update.value) == "targets[1].virtual_key"
    assert admin.get_config(saved.id).version == 1


def test_invalid_config_is_refused_at_save_time_naming_the_field(admin: ImageGatewayClient) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"provider": "openai", "api_key": "sk-x", "retry": {"on_status_codes": [700]}}],
    }
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_config(unique("bad"), config)
    assert param_of(info.value) == "targets[0].retry.on_status_codes[0]"


def test_api_keys_inside_a_saved_config_are_never_returned(
    admin: ImageGatewayClient,
    gateway: GatewayThread,
    channel: grpc.Channel,
    generator: ImageGatewayClient,
    emulators: Emulators,
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {
                "provider": "stability-ai",
                "api_key": "sk-wrong-stability-key-000000",
                "custom_host": emulators.stability.base_url,
            },
            {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": emulators.openai.base_url},
        ],
    }
    created = admin.create_config(unique("sealed"), config)
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    metadata = bearer(gateway.admin_key)
    responses = [
        stub.GetConfig(configs_pb2.GetConfigRequest(id=created.id), metadata=metadata, timeout=RPC_TIMEOUT),
        stub.ListConfigs(configs_pb2.ListConfigsRequest(page_size=200), metadata=metadata, timeout=RPC_TIMEOUT),
    ]
    for response in responses:
        wire = response.SerializeToString()
        assert OPENAI_SECRET.encode() not in wire
        assert b"sk-wrong-stability-key" not in wire
    assert OPENAI_SECRET not in str(created)
    fetched = admin.get_config(created.id)
    assert [t.api_key for t in fetched.config.targets] == ["", ""]
    assert [t.provider for t in fetched.config.targets] == ["stability-ai", "openai"]

    # The sealed keys still reach the providers: Stability refuses its wrong key, OpenAI serves.
    response = generator.generate_image(prompt="a kite", config_id=created.id)
    assert response.outcome.provider == "openai"
    assert response.outcome.attempts[0].error_kind == images_pb2.ERROR_KIND_AUTHENTICATION
    assert emulators.stability.requests[-1].headers["authorization"] == "Bearer sk-wrong-stability-key-000000"
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_SECRET}"


# -- virtual keys ---------------------------------------------------------------------------------


def test_virtual_key_lifecycle_never_returns_the_secret(
    admin: ImageGatewayClient, gateway: GatewayThread, channel: grpc.Channel, emulators: Emulators
) -> None:
    stub = service_pb2_grpc.ImageGatewayStub(channel)
    metadata = bearer(gateway.admin_key)
    vk_id = unique("vk-life")
    secret = "sk-test-lifecycle-secret-7e1f3a"
    wires: list[bytes] = []

    created = stub.CreateVirtualKey(
        keys_pb2.CreateVirtualKeyRequest(
            name="Lifecycle key",
            provider="OpenAI",
            secret=secret,
            base_url=emulators.openai.base_url,
            virtual_key_id=vk_id,
        ),
        metadata=metadata,
        timeout=RPC_TIMEOUT,
    )
    wires.append(created.SerializeToString())
    key = created.virtual_key
    assert (key.id, key.name, key.provider, key.base_url) == (
        vk_id,
        "Lifecycle key",
        "openai",
        emulators.openai.base_url,
    )
    assert key.HasField("create_time")

    got = stub.GetVirtualKey(keys_pb2.GetVirtualKeyRequest(id=vk_id), metadata=metadata, timeout=RPC_TIMEOUT)
    wires.append(got.SerializeToString())
    assert got.virtual_key.id == vk_id

    listed = list(admin.iter_virtual_keys(page_size=2))
    assert vk_id in [k.id for k in listed]
    wires.extend(k.SerializeToString() for k in listed)

    rotated = stub.RotateVirtualKey(
        keys_pb2.RotateVirtualKeyRequest(id=vk_id, secret=secret + "-new"), metadata=metadata, timeout=RPC_TIMEOUT
    )
    wires.append(rotated.SerializeToString())
    assert rotated.virtual_key.rotate_time.ToDatetime() >= rotated.virtual_key.create_time.ToDatetime()

    for wire in wires:
        assert secret.encode() not in wire

    admin.delete_virtual_key(vk_id)
    with pytest.raises(NotFoundError):
        admin.get_virtual_key(vk_id)
    with pytest.raises(NotFoundError):
        admin.delete_virtual_key(vk_id)
    with pytest.raises(NotFoundError):
        admin.rotate_virtual_key(vk_id, "sk-whatever-0123456789")
    assert vk_id not in [k.id for k in admin.iter_virtual_keys()]


def test_rotated_secret_reaches_the_provider_on_the_next_request(
    admin: ImageGatewayClient, generator: ImageGatewayClient, emulators: Emulators
) -> None:
    vk = admin.create_virtual_key(
        unique("Rotate me"), "openai", "sk-test-stale-secret-0000000000", base_url=emulators.openai.base_url
    )

    with pytest.raises(ImageGatewayError) as stale:
        generator.generate_image(prompt="a kite", virtual_key=vk.id)
    assert stale.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert stale.value.reason == "UPSTREAM_AUTHENTICATION"  # the provider refused its key, not us
    assert emulators.openai.requests[-1].headers["authorization"] == "Bearer sk-test-stale-secret-0000000000"

    admin.rotate_virtual_key(vk.id, OPENAI_SECRET)
    response = generator.generate_image(prompt="a kite", virtual_key=vk.id)
    assert response.images[0].data.startswith(PNG_SIGNATURE)
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_SECRET}"

    admin.rotate_virtual_key(vk.id, ROTATED_SECRET)
    with pytest.raises(ImageGatewayError):
        generator.generate_image(prompt="a kite", virtual_key=vk.id)
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {ROTATED_SECRET}"


def test_virtual_key_with_an_unknown_provider_is_invalid_argument(admin: ImageGatewayClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_virtual_key(unique("bad provider"), "dall-e-land", "sk-test-0123456789")
    assert param_of(info.value) == "provider"


def test_virtual_key_credential_fields_are_checked_by_the_providers_schema_and_serve(
    admin: ImageGatewayClient, emulators: Emulators
) -> None:
    secret = "sk-test-fields-secret-0123456789"
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_virtual_key(
            unique("fields"), "openai", credential_fields={"api_key": secret, "region": "eu-west-1"}
        )
    assert param_of(info.value) == "credential_fields.region" and secret not in info.value.message
    key = admin.create_virtual_key(
        unique("fields"), "openai", base_url=emulators.openai.base_url, credential_fields={"api_key": secret}
    )
    assert dict(key.public_credential_fields) == {}
    rotated = admin.rotate_virtual_key(key.id, credential_fields={"api_key": OPENAI_SECRET})  # the emulator's key
    assert dict(rotated.public_credential_fields) == {}
    admin.generate_image(prompt="a cat", model="dall-e-2", virtual_key=key.id)
    assert emulators.openai.requests[-1].headers["authorization"] == f"Bearer {OPENAI_SECRET}"


def test_virtual_key_with_a_taken_id_is_already_exists(admin: ImageGatewayClient, seed: Seed) -> None:
    with pytest.raises(AlreadyExistsError):
        admin.create_virtual_key("another", "openai", "sk-test-0123456789", virtual_key_id=seed.openai_vk)


@pytest.mark.parametrize(
    "base_url",
    ["https://10.1.2.3/v1", "http://192.168.0.7:8080", "https://localhost/v1", "http://169.254.169.254/latest"],
)
def test_virtual_key_base_url_on_a_private_address_not_allowed_is_invalid_argument(
    admin: ImageGatewayClient, base_url: str
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_virtual_key(unique("private"), "openai", "sk-test-0123456789", base_url=base_url)
    assert param_of(info.value) == "base_url"


def test_virtual_key_with_an_empty_secret_is_invalid_argument(admin: ImageGatewayClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_virtual_key(unique("empty"), "openai", "   ")
    assert param_of(info.value) == "secret"


# -- gateway API keys -----------------------------------------------------------------------------


def test_api_key_plaintext_is_returned_once_and_never_listed(admin: ImageGatewayClient, gateway: GatewayThread) -> None:
    created = admin.create_api_key(unique("shown-once"), "generate")
    plaintext = created.key
    assert plaintext.startswith("igw_")
    assert created.api_key.scope == keys_pb2.SCOPE_GENERATE
    assert plaintext.startswith(created.api_key.display_prefix)
    assert created.api_key.display_prefix != plaintext

    listed = list(admin.iter_api_keys(page_size=3))
    mine = [k for k in listed if k.id == created.api_key.id]
    assert len(mine) == 1 and mine[0].display_prefix == created.api_key.display_prefix
    for key in listed:
        wire = key.SerializeToString()
        assert plaintext.encode() not in wire
        assert gateway.admin_key.encode() not in wire

    with ImageGatewayClient(gateway.grpc_target, api_key=plaintext) as client:
        client.list_logs(page_size=1)


def test_revoking_an_api_key_marks_it_and_locks_it_out(admin: ImageGatewayClient, gateway: GatewayThread) -> None:
    created = admin.create_api_key(unique("revoked"), "generate")
    revoked = admin.revoke_api_key(created.api_key.id)
    assert revoked.HasField("revoke_time")
    listed = {k.id: k for k in admin.iter_api_keys()}
    assert listed[created.api_key.id].HasField("revoke_time")
    with ImageGatewayClient(gateway.grpc_target, api_key=created.key) as client, pytest.raises(UnauthenticatedError):
        client.list_logs(page_size=1)
    with pytest.raises(NotFoundError):
        admin.revoke_api_key("no-such-key-id")


def test_api_key_without_a_name_is_invalid_argument(admin: ImageGatewayClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        admin.create_api_key(" ", "generate")
    assert param_of(info.value) == "name"


def test_new_admin_key_may_call_admin_rpcs(admin: ImageGatewayClient, gateway: GatewayThread) -> None:
    created = admin.create_api_key(unique("second-admin"), "admin")
    assert created.api_key.scope == keys_pb2.SCOPE_ADMIN
    with ImageGatewayClient(gateway.grpc_target, api_key=created.key) as client:
        client.list_virtual_keys(page_size=1)


# -- request logs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def logged_pair(
    generator: ImageGatewayClient,
    admin: ImageGatewayClient,
    seed: Seed,
    openai_emulator: OpenAIEmulator,
    stability_emulator: StabilityEmulator,
) -> tuple[logs_pb2.RequestLog, logs_pb2.RequestLog]:
    """One served request (Stability) and one failed one (both targets 503), by the generate key."""
    ok_trace, failed_trace = unique("log-ok"), unique("log-failed")
    generator.generate_image(
        prompt="a logged kite", config_id=seed.config_id, trace_id=ok_trace, metadata={"team": "kites"}
    )
    stability_emulator.reset()
    openai_emulator.reset()
    stability_emulator.inject(Fault.status(503))
    openai_emulator.inject(Fault.status(503))
    try:
        with pytest.raises(ImageGatewayError):
            generator.generate_image(prompt="a failing kite", config_id=seed.config_id, trace_id=failed_trace)
    finally:
        stability_emulator.reset()
        openai_emulator.reset()
    return first_log(admin, ok_trace), first_log(admin, failed_trace)


def traces(response: logs_pb2.ListLogsResponse) -> list[str]:
    return [record.trace_id for record in response.logs]


def test_list_logs_filters_by_trace_id(
    admin: ImageGatewayClient, logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog], seed: Seed
) -> None:
    ok, failed = logged_pair
    assert traces(admin.list_logs(trace_id=ok.trace_id)) == [ok.trace_id]
    assert traces(admin.list_logs(trace_id=failed.trace_id)) == [failed.trace_id]
    assert admin.list_logs(trace_id=unique("never-sent")).logs == []

    assert ok.transport == "grpc"
    assert ok.status_code == 200 and ok.error_kind == images_pb2.ERROR_KIND_UNSPECIFIED
    assert (ok.provider, ok.model, ok.served_target) == ("stability-ai", "stable-diffusion-v1-6", "config.targets[0]")
    assert not ok.fallback_used
    assert (ok.config_id, ok.config_version) == (seed.config_id, 1)
    assert ok.prompt == "a logged kite"
    assert dict(ok.metadata) == {"team": "kites"}
    assert len(ok.images) == 1 and ok.images[0].width == 512 and len(ok.images[0].sha256) == 64
    assert ok.HasField("create_time")

    assert failed.status_code == 503
    assert failed.error_kind == images_pb2.ERROR_KIND_UNAVAILABLE
    assert failed.error
    assert not failed.fallback_used  # a target other than the first must serve for a fallback (issue 14)
    assert [(a.provider, a.status_code) for a in failed.attempts] == [("stability-ai", 503), ("openai", 503)]


def test_list_logs_filters_by_outcome(
    admin: ImageGatewayClient, logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog]
) -> None:
    ok, failed = logged_pair
    assert traces(admin.list_logs(trace_id=ok.trace_id, outcome="success")) == [ok.trace_id]
    assert traces(admin.list_logs(trace_id=ok.trace_id, outcome="failure")) == []
    assert traces(admin.list_logs(trace_id=failed.trace_id, outcome="failure")) == [failed.trace_id]
    assert traces(admin.list_logs(trace_id=failed.trace_id, outcome="success")) == []
    assert all(r.status_code == 200 for r in admin.list_logs(outcome="success", page_size=50).logs)
    assert all(r.status_code != 200 for r in admin.list_logs(outcome="failure", page_size=50).logs)


def test_list_logs_filters_by_provider_in_any_spelling(
    admin: ImageGatewayClient, logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog]
) -> None:
    ok, failed = logged_pair
    assert traces(admin.list_logs(trace_id=ok.trace_id, provider="stability-ai")) == [ok.trace_id]
    assert traces(admin.list_logs(trace_id=ok.trace_id, provider="stabilityai")) == [ok.trace_id]
    assert traces(admin.list_logs(trace_id=ok.trace_id, provider="openai")) == []
    # A failed request is filed under the provider it tried last.
    assert traces(admin.list_logs(trace_id=failed.trace_id, provider="openai")) == [failed.trace_id]
    assert all(r.provider == "openai" for r in admin.list_logs(provider="openai", page_size=50).logs)


def test_list_logs_filters_by_status(
    admin: ImageGatewayClient, logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog]
) -> None:
    ok, failed = logged_pair
    assert traces(admin.list_logs(trace_id=failed.trace_id, status_code=503)) == [failed.trace_id]
    assert traces(admin.list_logs(trace_id=failed.trace_id, status_code=200)) == []
    assert traces(admin.list_logs(trace_id=ok.trace_id, status_code=200)) == [ok.trace_id]
    assert all(r.status_code == 503 for r in admin.list_logs(status_code=503, page_size=50).logs)


def test_get_log_by_id(
    admin: ImageGatewayClient,
    generator: ImageGatewayClient,
    logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog],
) -> None:
    ok, failed = logged_pair
    assert admin.get_log(ok.id) == ok
    assert generator.get_log(failed.id) == failed
    with pytest.raises(NotFoundError):
        admin.get_log("log_does_not_exist")


def test_generate_key_sees_only_its_own_logs(
    admin: ImageGatewayClient,
    gateway: GatewayThread,
    seed: Seed,
    emulators: Emulators,
    generate_key: tuple[str, str],
    logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog],
) -> None:
    ok, _ = logged_pair
    other = admin.create_api_key(unique("other-tenant"), "generate")
    admin_trace = unique("admin-own")
    admin.generate_image(prompt="an admin's kite", config_id=seed.config_id, trace_id=admin_trace)
    admin_log = first_log(admin, admin_trace)

    with ImageGatewayClient(gateway.grpc_target, api_key=other.key) as client:
        other_trace = unique("other-own")
        client.generate_image(prompt="another tenant's kite", config_id=seed.config_id, trace_id=other_trace)
        own = first_log(client, other_trace)
        assert own.caller_key_id == other.api_key.id

        assert client.list_logs(trace_id=ok.trace_id).logs == []
        assert client.list_logs(trace_id=admin_trace).logs == []
        assert {r.caller_key_id for r in client.iter_logs(page_size=20)} == {other.api_key.id}
        with pytest.raises(NotFoundError):
            client.get_log(ok.id)
        with pytest.raises(NotFoundError):
            client.get_log(admin_log.id)
        assert client.get_log(own.id) == own

    assert ok.caller_key_id == generate_key[0]
    # The admin sees everyone's.
    assert admin.get_log(own.id) == own
    assert traces(admin.list_logs(trace_id=other_trace)) == [other_trace]


def test_list_logs_pages_without_repeats(
    admin: ImageGatewayClient, logged_pair: tuple[logs_pb2.RequestLog, logs_pb2.RequestLog]
) -> None:
    first = admin.list_logs(page_size=2)
    assert len(first.logs) == 2 and first.next_page_token
    second = admin.list_logs(page_size=2, page_token=first.next_page_token)
    assert not {r.id for r in first.logs} & {r.id for r in second.logs}
    times = [r.create_time.ToDatetime() for r in (*first.logs, *second.logs)]
    assert times == sorted(times, reverse=True)


# -- health and reflection ------------------------------------------------------------------------


def test_health_check_is_serving_without_a_key(channel: grpc.Channel) -> None:
    stub: Any = health_pb2_grpc.HealthStub(channel)  # the stub package types it loosely
    for service in ("", SERVICE):
        answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=RPC_TIMEOUT)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # the stub package types it loosely
    answers = list(
        stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=RPC_TIMEOUT)
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert SERVICE in names
    assert "grpc.health.v1.Health" in names

    files = list(
        stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)]), timeout=RPC_TIMEOUT
        )
    )
    assert files[0].file_descriptor_response.file_descriptor_proto


# -- secrets at rest and in metrics ---------------------------------------------------------------


def test_provider_secrets_are_not_stored_in_plain_text(
    admin: ImageGatewayClient,
    gateway: GatewayThread,
    generator: ImageGatewayClient,
    seed: Seed,
    emulators: Emulators,
    generate_key: tuple[str, str],
) -> None:
    vk = admin.create_virtual_key(
        unique("at-rest"), "stability-ai", SEALED_SECRET, base_url=emulators.stability.base_url
    )
    admin.rotate_virtual_key(vk.id, SEALED_SECRET + "-rotated")
    admin.create_config(
        unique("at-rest"),
        {"provider": "openai", "api_key": INLINE_CONFIG_SECRET, "custom_host": emulators.openai.base_url},
    )
    trace_id = unique("at-rest")
    generator.generate_image(
        prompt="a kite",
        provider="openai",
        provider_api_key=OPENAI_SECRET,
        custom_host=emulators.openai.base_url,
        trace_id=trace_id,
    )
    first_log(admin, trace_id)

    data_dir = Path(gateway.settings.data_dir)
    files = [p for p in data_dir.iterdir() if p.name.startswith("imagegw.db")]
    assert any(p.name == "imagegw.db" for p in files)
    stored = b"".join(p.read_bytes() for p in files)
    assert b"virtual_key:" in stored or vk.id.encode() in stored  # the rows are there...
    for secret in (
        STABILITY_SECRET,
        OPENAI_SECRET,
        SEALED_SECRET,
        INLINE_CONFIG_SECRET,
        ROTATED_SECRET,
        generate_key[1],
        gateway.admin_key,
    ):
        assert secret.encode() not in stored, f"{secret[:12]}... is stored in plain text"  # ...the secrets not


def test_metrics_have_grpc_and_fallback_series_and_no_secrets(
    gateway: GatewayThread,
    generator: ImageGatewayClient,
    seed: Seed,
    emulators: Emulators,
    generate_key: tuple[str, str],
) -> None:
    emulators.stability.inject(Fault.status(503))
    assert generator.generate_image(prompt="a kite", config_id=seed.config_id).outcome.fallback_used

    text = httpx.get(gateway.metrics_url, timeout=RPC_TIMEOUT).text
    samples = prometheus_samples(text)

    handled = [(labels, value) for name, labels, value in samples if name == "grpc_server_handled_total"]
    assert any(labels["grpc_code"] == "OK" for labels, _ in handled)
    assert any(
        labels["grpc_code"] == "OK" and labels["grpc_method"] == "GenerateImage" and value >= 1
        for labels, value in handled
    )
    assert any(labels["grpc_code"] == "Unauthenticated" for labels, _ in handled)  # Go spelling
    assert {labels["grpc_service"] for labels, _ in handled} == {SERVICE}
    fallbacks = [(labels, value) for name, labels, value in samples if name == "imagegateway_fallbacks_total"]
    assert any(
        labels == {"from_provider": "stability-ai", "to_provider": "openai", "reason": "unavailable"} and value >= 1
        for labels, value in fallbacks
    )
    for secret in (
        STABILITY_SECRET,
        OPENAI_SECRET,
        SEALED_SECRET,
        INLINE_CONFIG_SECRET,
        ROTATED_SECRET,
        generate_key[1],
        gateway.admin_key,
    ):
        assert secret not in text
    assert "igw_" not in text
