"""The hand-written client against a real gRPC server on a loopback socket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2

from imagegateway import (
    AsyncImageGatewayClient,
    ImageGatewayClient,
    InvalidArgumentError,
    NotFoundError,
    UnauthenticatedError,
    UnavailableError,
    build_generate_request,
)
from imagegateway.v1 import configs_pb2, images_pb2, logs_pb2
from tests.unit.test_client_fake_server import ADMIN_KEY, OTHER_KEY, FakeGateway, serving

FALLBACK = {
    "strategy": {"mode": "fallback", "on_status_codes": [429, 503]},
    "targets": [
        {"provider": "stability-ai", "api_key": "sk-stab", "override_params": {"model": "sd3"}},
        {"virtual_key": "openai-prod", "retry": {"attempts": 2}},
    ],
}


def assert_deadline(remaining: float | None, seconds: float) -> None:
    # grpc-timeout travels with coarse units and rounds up, so allow a second either way.
    assert remaining is not None and seconds - 1.5 < remaining < seconds + 1.5


@pytest.fixture(autouse=True)
def no_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMAGEGW_SERVER", raising=False)
    monkeypatch.delenv("IMAGEGW_API_KEY", raising=False)


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def target(fake: FakeGateway) -> Iterator[str]:
    with serving(fake) as address:
        yield address


@pytest.fixture
def client(target: str) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(target, api_key=ADMIN_KEY) as c:
        yield c


def test_sends_bearer_key_and_admin_deadline(client: ImageGatewayClient, fake: FakeGateway) -> None:
    client.list_configs()
    call = fake.last("ListConfigs")
    assert call.metadata["authorization"] == f"Bearer {ADMIN_KEY}"
    assert_deadline(call.time_remaining, 10)


def test_image_calls_get_the_longer_deadline_and_timeouts_override(
    client: ImageGatewayClient, fake: FakeGateway, target: str
) -> None:
    client.generate_image(prompt="a fox")
    assert_deadline(fake.last("GenerateImage").time_remaining, 300)
    client.list_configs(timeout=3)
    assert_deadline(fake.last("ListConfigs").time_remaining, 3)
    with ImageGatewayClient(target, api_key=ADMIN_KEY, timeout=42) as short:
        list(short.stream_generate_image(prompt="a fox"))
    assert_deadline(fake.last("StreamGenerateImage").time_remaining, 42)


def test_set_api_key_rotates_the_key_of_a_live_client(target: str, fake: FakeGateway) -> None:
    with ImageGatewayClient(target, api_key="igw_wrong") as client:
        with pytest.raises(UnauthenticatedError) as failed:
            client.list_api_keys()
        assert failed.value.code.name == "UNAUTHENTICATED"
        client.set_api_key(OTHER_KEY)
        client.list_api_keys()
    assert fake.last("ListApiKeys").metadata["authorization"] == f"Bearer {OTHER_KEY}"


def test_target_and_key_default_to_the_environment(
    target: str, fake: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEGW_SERVER", target)
    monkeypatch.setenv("IMAGEGW_API_KEY", ADMIN_KEY)
    with ImageGatewayClient() as client:
        assert client.target == target
        client.list_virtual_keys()
    assert fake.last("ListVirtualKeys").metadata["authorization"] == f"Bearer {ADMIN_KEY}"


def test_iter_configs_follows_page_tokens_to_the_end(client: ImageGatewayClient, fake: FakeGateway) -> None:
    for i in range(5):
        client.create_config(f"c{i}", FALLBACK)
    names = [c.name for c in client.iter_configs()]
    assert names == ["c0", "c1", "c2", "c3", "c4"]
    tokens = [c.request.page_token for c in fake.calls if c.method == "ListConfigs"]
    assert tokens == ["", "2", "4"]


def test_iter_logs_sends_the_filters_with_every_page(client: ImageGatewayClient, fake: FakeGateway) -> None:
    fake.add_logs(3)
    since = datetime(2026, 1, 1, 12, 0)  # naive: taken as UTC
    logs = list(client.iter_logs(outcome="failure", provider="openai", start_time=since, status_code=503))
    assert [log.id for log in logs] == ["log_1", "log_2", "log_3"]
    requests = [c.request for c in fake.calls if c.method == "ListLogs"]
    assert len(requests) == 2
    for request in requests:
        assert request.outcome == logs_pb2.REQUEST_OUTCOME_FAILURE
        assert request.provider == "openai" and request.status_code == 503
        assert request.start_time.ToJsonString() == "2026-01-01T12:00:00Z"
        assert not request.HasField("end_time")


def test_other_pagers_walk_every_page(client: ImageGatewayClient) -> None:
    for i in range(3):
        client.create_virtual_key(f"key {i}", "openai", f"sk-{i}")
        client.create_api_key(f"k{i}", "admin")
    assert [k.id for k in client.iter_virtual_keys()] == ["key-0", "key-1", "key-2"]
    assert [k.name for k in client.iter_api_keys(page_size=1)] == ["k0", "k1", "k2"]


def test_not_found_maps_to_not_found_error(client: ImageGatewayClient) -> None:
    with pytest.raises(NotFoundError) as failed:
        client.get_config("nope")
    assert failed.value.message == 'config "nope" not found'
    assert failed.value.details == () and failed.value.failure is None


def test_failed_generation_decodes_error_info_and_attempts(client: ImageGatewayClient) -> None:
    with pytest.raises(UnavailableError) as failed:
        client.generate_image(prompt="fail", trace_id="t-42")
    error = failed.value
    assert error.message == "every target failed; last: stability-ai 503"
    assert error.reason == "ALL_TARGETS_FAILED"
    assert error.error_info is not None and error.error_info.metadata["provider"] == "stability-ai"
    assert error.failure is not None and error.failure.trace_id == "t-42" and error.failure.http_status == 503
    assert [a.provider for a in error.attempts] == ["stability-ai"]
    assert error.attempts[0].error_kind == images_pb2.ERROR_KIND_UNAVAILABLE


def test_streaming_failure_is_decoded_too(client: ImageGatewayClient) -> None:
    with pytest.raises(UnavailableError) as failed:
        list(client.stream_generate_image(prompt="fail"))
    assert failed.value.failure is not None and failed.value.failure.log_id == "log_failed"


def test_invalid_config_carries_bad_request_details(client: ImageGatewayClient) -> None:
    with pytest.raises(InvalidArgumentError) as failed:
        client.validate_config({"strategy": {"mode": "roundrobin"}})
    bad = failed.value.detail(error_details_pb2.BadRequest)
    assert bad is not None and bad.field_violations[0].field == "strategy.mode"
    client.validate_config(FALLBACK)


def test_generate_request_is_built_from_keyword_fields(client: ImageGatewayClient, fake: FakeGateway) -> None:
    response = client.generate_image(
        prompt="a red fox",
        n=2,
        size="1024x1024",
        config=FALLBACK,
        quality="hd",
        seed=7,
        trace_id="t-1",
        metadata={"team": "web"},
        extra_params={"steps": 30},
    )
    assert len(response.images) == 2 and response.outcome.fallback_used
    sent = fake.last("GenerateImage").request
    assert sent.parameters.prompt == "a red fox" and sent.parameters.n == 2 and sent.parameters.seed == 7
    assert sent.parameters.extra_params["steps"] == 30
    assert sent.routing.config.targets[0].override_params["model"] == "sd3"
    assert sent.routing.config.targets[1].retry.attempts == 2
    assert dict(sent.metadata) == {"team": "web"} and sent.trace_id == "t-1"


def test_prebuilt_requests_are_sent_as_they_are(client: ImageGatewayClient, fake: FakeGateway) -> None:
    request = build_generate_request(prompt="x", provider="openai", provider_api_key="sk-x", n=3)
    chunks = list(client.stream_generate_image(request))
    assert [c.image.index for c in chunks] == [0, 1, 2]
    assert [c.HasField("outcome") for c in chunks] == [False, False, True]
    sent = fake.last("StreamGenerateImage").request
    assert sent.routing.provider == "openai" and sent.routing.provider_api_key == "sk-x"
    with pytest.raises(TypeError):
        client.generate_image(request, prompt="y")


def test_request_fields_are_checked_before_sending() -> None:
    with pytest.raises(ValueError, match="at most one routing source"):
        build_generate_request(prompt="x", provider="openai", config_id="cfg_1")
    with pytest.raises(TypeError, match="qualty"):
        build_generate_request(prompt="x", qualty="hd")  # type: ignore[call-arg]
    with pytest.raises(json_format.ParseError, match=r'no field named "weigth" at "RoutingConfig.targets\[0\]"'):
        build_generate_request(prompt="x", config={"targets": [{"weigth": 1}]})


def test_images_larger_than_grpcs_default_4_mib_arrive(client: ImageGatewayClient, fake: FakeGateway) -> None:
    fake.image_bytes = 5 * 1024 * 1024
    response = client.generate_image(prompt="big")
    assert len(response.images[0].data) == 5 * 1024 * 1024


def test_config_versions_and_virtual_key_secret_round_trip(client: ImageGatewayClient, fake: FakeGateway) -> None:
    created = client.create_config("prod", FALLBACK)
    updated = client.update_config(created.id, {"provider": "openai"}, name="prod-2")
    assert (created.version, updated.version, updated.name) == (1, 2, "prod-2")
    assert client.get_config(f"{created.id}@1").config.strategy.mode == "fallback"
    assert client.get_config(created.id, 2).config.provider == "openai"
    client.delete_config(created.id)
    key = client.create_virtual_key(
        "OpenAI prod", "openai", "sk-live", base_url="https://example.test", virtual_key_id="oa"
    )
    assert fake.secrets["oa"] == "sk-live" and key.base_url == "https://example.test"
    client.rotate_virtual_key("oa", "sk-new")
    assert fake.secrets["oa"] == "sk-new"
    client.delete_virtual_key("oa")
    with pytest.raises(NotFoundError):
        client.get_virtual_key("oa")


def test_closed_client_refuses_calls(target: str) -> None:
    with ImageGatewayClient(target, api_key=ADMIN_KEY) as client:
        pass
    with pytest.raises(ValueError):
        client.list_configs()


async def test_async_client_auth_deadline_pager_and_stream(target: str, fake: FakeGateway) -> None:
    async with AsyncImageGatewayClient(target, api_key=ADMIN_KEY) as client:
        for i in range(3):
            await client.create_config(f"c{i}", configs_pb2.RoutingConfig(provider="openai"))
        assert [c.name async for c in client.iter_configs()] == ["c0", "c1", "c2"]
        call = fake.last("ListConfigs")
        assert call.metadata["authorization"] == f"Bearer {ADMIN_KEY}"
        assert_deadline(call.time_remaining, 10)
        chunks = [c async for c in client.stream_generate_image(prompt="a fox", n=2)]
        assert chunks[-1].outcome.provider == "openai"
        client.set_api_key(OTHER_KEY)
        created = await client.create_api_key("ci", "generate")
        assert created.key.startswith("igw_") and created.api_key.scope == 2
    assert fake.last("CreateApiKey").metadata["authorization"] == f"Bearer {OTHER_KEY}"


async def test_async_client_maps_errors(target: str) -> None:
    async with AsyncImageGatewayClient(target, api_key=ADMIN_KEY) as client:
        with pytest.raises(UnavailableError) as failed:
            await client.generate_image(prompt="fail")
        assert failed.value.reason == "ALL_TARGETS_FAILED" and len(failed.value.attempts) == 1
        with pytest.raises(UnavailableError):
            [c async for c in client.stream_generate_image(prompt="fail")]
        with pytest.raises(NotFoundError):
            await client.get_log("missing")
    async with AsyncImageGatewayClient(target) as anonymous:
        with pytest.raises(UnauthenticatedError):
            await anonymous.list_logs()


def test_a_bare_providers_typed_credential_is_sent_in_provider_credential(
    client: ImageGatewayClient, fake: FakeGateway
) -> None:
    fields = {"aws_access_key_id": "AKIAIMAGEGWTEST00001", "aws_secret_access_key": "s", "aws_region": "us-east-1"}
    client.generate_image(prompt="x", provider="bedrock", provider_credential=fields)
    sent = fake.last("GenerateImage").request
    assert sent.routing.provider == "bedrock" and dict(sent.routing.provider_credential) == fields
    assert "provider_credential" not in sent.parameters.extra_params
