"""The Vertex AI adapter over real sockets: URLs, service-account tokens (cached, single flight, refreshed
once on a 401), the token URI as an SSRF path, bodies, safety filters, errors and credential checks.

The Vertex emulator (tests/emulators/vertex.py) verifies each JWT assertion against the service
account's public key, issues and expires tokens, and validates Imagen and Gemini bodies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from imagegateway_server.domain.errors import ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS
from imagegateway_server.providers.vertex_ai.adapter import VertexAIAdapter
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.conftest import VERTEX_ACCESS_TOKEN, VERTEX_PROJECT, ServiceAccount
from tests.emulators import Fault, GeminiApiEmulator, VertexEmulator

SCHEMA = PROVIDER_SPECS["vertex-ai"].credentials


def credential_fields(account: ServiceAccount | None = None, **fields: str) -> dict[str, str]:
    raw = {"vertex_project_id": VERTEX_PROJECT, "vertex_region": "us-central1", **fields}
    if account is not None:
        raw["vertex_service_account_json"] = account.text
    return {k: v for k, v in raw.items() if v}


def target(account: ServiceAccount | None = None, *, strict: bool = False, **fields: str) -> UpstreamTarget:
    if account is None and "api_key" not in fields:
        fields["api_key"] = VERTEX_ACCESS_TOKEN
    credential = SCHEMA.parse(credential_fields(account, **fields), provider="vertex-ai")
    return UpstreamTarget(credential=credential, strict=strict)


@pytest.fixture
def emu(google_emulators: tuple[VertexEmulator, GeminiApiEmulator]) -> VertexEmulator:
    return google_emulators[0]


MakeFn = Callable[..., VertexAIAdapter]


@pytest.fixture
async def make(emu: VertexEmulator) -> AsyncIterator[MakeFn]:
    made: list[VertexAIAdapter] = []

    def factory(allowed: tuple[str, ...] = ("127.0.0.1",)) -> VertexAIAdapter:
        # The gateway's own client: the emulator's host is listed, as an operator lists a token host.
        adapter = VertexAIAdapter(base_url=emu.origin, client=guarded_client(UpstreamHostPolicy(allowed)))
        made.append(adapter)
        return adapter

    yield factory
    for adapter in made:
        await adapter.aclose()


def test_the_url_is_built_from_region_and_project() -> None:
    adapter = VertexAIAdapter()
    assert adapter.model_url(target(), "imagen-4.0-generate-001", "predict") == (
        "https://us-central1-aiplatform.googleapis.com/v1/projects/imagegw-test/locations/us-central1"
        "/publishers/google/models/imagen-4.0-generate-001:predict"
    )
    assert adapter.model_url(target(vertex_region="global"), "gemini-2.5-flash-image", "generateContent") == (
        "https://aiplatform.googleapis.com/v1/projects/imagegw-test/locations/global"
        "/publishers/google/models/gemini-2.5-flash-image:generateContent"
    )
    custom = UpstreamTarget(credential=target().credential, base_url="https://proxy.example/vertex")
    assert adapter.model_url(custom, "imagen-3.0-generate-002", "predict").startswith(
        "https://proxy.example/vertex/v1/projects/imagegw-test/locations/us-central1/"
    )


async def test_a_service_account_token_is_fetched_once_and_reused(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    adapter = make()
    request = ImageRequest(prompt="a lighthouse", model="imagen-4.0-generate-001", n=2, size="1792x1024", seed=5)
    first = await adapter.generate(request, target(service_account))
    await adapter.generate(request, target(service_account))
    assert emu.token_requests == 1
    calls = [r for r in emu.requests if r.path.endswith(":predict")]
    assert len(calls) == 2 and calls[0].headers["authorization"] == calls[1].headers["authorization"]
    assert calls[0].path == (
        "/v1/projects/imagegw-test/locations/us-central1/publishers/google/models/imagen-4.0-generate-001:predict"
    )
    assert calls[0].json == {
        "instances": [{"prompt": "a lighthouse"}],
        "parameters": {
            "sampleCount": 2,
            "aspectRatio": "16:9",
            "sampleImageSize": "2K",
            "seed": 5,
            "addWatermark": False,
            "includeRaiReason": True,
        },
    }
    assert [image.size for image in first.images] == ["2816x1536", "2816x1536"]
    assert first.images[0].provider == "vertex-ai"


async def test_concurrent_first_calls_share_one_token_request(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    adapter = make()
    request = ImageRequest(prompt="a", model="imagen-4.0-fast-generate-001")
    await asyncio.gather(*(adapter.generate(request, target(service_account)) for _ in range(8)))
    assert emu.token_requests == 1


async def test_an_expired_token_is_refreshed_once_and_the_call_sent_again(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    adapter = make()
    request = ImageRequest(prompt="a", model="gemini-2.5-flash-image")
    await adapter.generate(request, target(service_account))
    emu.expire_tokens()
    result = await adapter.generate(request, target(service_account))
    assert len(result.images) == 1 and emu.token_requests == 2
    calls = [r.path.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for r in emu.requests]
    assert calls == ["token", "generateContent", "generateContent", "token", "generateContent"]


async def test_a_second_401_after_the_refresh_is_an_authentication_failure(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    adapter = make()
    request = ImageRequest(prompt="a", model="imagen-4.0-fast-generate-001")
    await adapter.generate(request, target(service_account))  # a token in the cache
    emu.reset()
    # The call is refused, the refresh gets a token, and the call sent again is refused: classified,
    # never a loop.
    emu.inject(Fault.status(401), times=2)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(request, target(service_account))
    assert info.value.kind is ErrorKind.AUTHENTICATION and info.value.code == "UNAUTHENTICATED"
    assert [r.path.rsplit(":", 1)[-1].rsplit("/", 1)[-1] for r in emu.requests] == ["predict", "token", "predict"]


async def test_an_access_token_given_as_api_key_is_sent_as_is_and_never_refreshed(
    make: MakeFn, emu: VertexEmulator
) -> None:
    adapter = make()
    await adapter.generate(ImageRequest(prompt="a", model="gemini-3-pro-image-preview", size="1024x1536"), target())
    (sent,) = emu.requests
    assert sent.headers["authorization"] == f"Bearer {VERTEX_ACCESS_TOKEN}"
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "a"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "2:3", "imageSize": "2K"}},
    }
    emu.inject(Fault.status(401))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a"), target())
    assert info.value.kind is ErrorKind.AUTHENTICATION and emu.token_requests == 0


async def test_a_token_uri_off_googles_host_and_the_allow_list_is_refused_before_any_call(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    adapter = make(allowed=())  # the emulator's host is not listed now
    for token_uri in (emu.token_uri, "https://evil.example/token", "https://169.254.169.254/token"):
        account = ServiceAccount(json.dumps({**service_account.key, "token_uri": token_uri}), service_account.key)
        unlisted = UpstreamTarget(credential=target(account).credential, base_url="https://vertex.example")
        with pytest.raises(ProviderError) as info:
            await adapter.generate(ImageRequest(prompt="a"), unlisted)
        assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.code == "token_uri_not_allowed"
        assert info.value.param == "vertex_service_account_json.token_uri"
    assert not emu.requests


async def test_a_key_the_token_endpoint_refuses_is_an_authentication_failure(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount
) -> None:
    from tests.emulators.vertex import service_account_key

    # Same account, another private key: the emulator's signature check fails.
    other, _ = service_account_key(service_account.key["client_email"], VERTEX_PROJECT, emu.token_uri)
    forged = ServiceAccount(json.dumps(other), other)
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a"), target(forged))
    assert info.value.kind is ErrorKind.AUTHENTICATION and "Invalid JWT Signature" in info.value.message
    assert other["private_key"] not in info.value.message


@pytest.mark.parametrize(
    ("fault", "kind"),
    [(Fault.status(503), ErrorKind.UNAVAILABLE), (Fault.rate_limited(), ErrorKind.RATE_LIMITED)],
)
async def test_token_endpoint_failures_are_classified(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount, fault: Fault, kind: ErrorKind
) -> None:
    emu.inject_token_fault(fault)
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a"), target(service_account))
    assert info.value.kind is kind and [r.path for r in emu.requests] == ["/token"]


async def test_imagen_partial_and_total_filtering(make: MakeFn, emu: VertexEmulator) -> None:
    adapter = make()
    emu.drop_next_images(2)
    result = await adapter.generate(ImageRequest(prompt="a", model="imagen-3.0-generate-002", n=4), target())
    assert len(result.images) == 2 and result.translations == ("n=4->2",)
    emu.inject(Fault.content_filter())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="imagen-3.0-generate-002", n=4), target())
    assert info.value.kind is ErrorKind.CONTENT_POLICY
    emu.inject(Fault.moderation_denied())
    with pytest.raises(ProviderError) as blocked:
        await adapter.generate(ImageRequest(prompt="a", model="imagen-3.0-generate-002"), target())
    assert blocked.value.kind is ErrorKind.CONTENT_POLICY and blocked.value.code == "content_policy_violation"


async def test_vertex_only_options_reach_the_body(make: MakeFn, emu: VertexEmulator) -> None:
    adapter = make()
    extra: Any = {"person_generation": "ALLOW_ADULT", "safety_setting": "BLOCK_ONLY_HIGH"}
    request = ImageRequest(
        prompt="a", model="imagen-3.0-generate-001", negative_prompt="blur", output_format="jpeg", output_compression=80
    ).with_overrides(extra)
    await adapter.generate(request, target())
    parameters = emu.requests[-1].json["parameters"]  # type: ignore[index]
    assert parameters["negativePrompt"] == "blur" and parameters["personGeneration"] == "allow_adult"
    assert parameters["safetySetting"] == "block_only_high"
    assert parameters["outputOptions"] == {"mimeType": "image/jpeg", "compressionQuality": 80}
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="imagen-4.0-generate-001", negative_prompt="b"), target())
    assert info.value.param == "negative_prompt"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"vertex_region": ""}, "vertex_region"),
        ({"vertex_project_id": ""}, "vertex_project_id"),
        ({"vertex_region": "us-central1.evil.example/"}, "vertex_region"),
        ({"vertex_project_id": "a/b"}, "vertex_project_id"),
    ],
)
def test_region_and_project_are_checked_when_saved(fields: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        SCHEMA.parse(credential_fields(api_key=VERTEX_ACCESS_TOKEN, **fields), provider="vertex-ai")
    assert info.value.param == param


@pytest.mark.parametrize(
    ("drop", "param"),
    [
        ("private_key", "vertex_service_account_json.private_key"),
        ("client_email", "vertex_service_account_json.client_email"),
    ],
)
def test_a_key_without_private_key_or_client_email_is_refused_naming_the_member(
    service_account: ServiceAccount, drop: str, param: str
) -> None:
    document = {k: v for k, v in service_account.key.items() if k != drop}
    raw = credential_fields(vertex_service_account_json=json.dumps(document))
    with pytest.raises(InvalidArgument) as info:
        SCHEMA.parse(raw, provider="vertex-ai", param_prefix="targets[0]")
    assert info.value.param == f"targets[0].{param}"
    assert service_account.key["private_key"] not in info.value.message


@pytest.mark.parametrize(
    ("text", "param"),
    [
        ("not json", "vertex_service_account_json"),
        ('{"type": "authorized_user"}', "vertex_service_account_json.type"),
        ('{"client_email": "a@b", "private_key": "x"}', "vertex_service_account_json.private_key"),
    ],
)
def test_a_malformed_key_is_refused_naming_the_field(text: str, param: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        SCHEMA.parse(credential_fields(vertex_service_account_json=text), provider="vertex-ai")
    assert info.value.param == param


def test_a_key_and_a_token_together_are_refused(service_account: ServiceAccount) -> None:
    with pytest.raises(InvalidArgument) as info:
        SCHEMA.parse(credential_fields(service_account, api_key=VERTEX_ACCESS_TOKEN), provider="vertex-ai")
    assert "exactly one of" in info.value.message


def test_the_service_account_is_never_in_a_repr(service_account: ServiceAccount) -> None:
    credential = target(service_account).credential
    assert service_account.key["private_key"] not in repr(credential)
    assert credential.public_fields() == {"vertex_project_id": VERTEX_PROJECT, "vertex_region": "us-central1"}


@pytest.mark.parametrize(("fault", "kind"), [(Fault.hang(), ErrorKind.TIMEOUT), (Fault.reset(), ErrorKind.UNAVAILABLE)])
async def test_a_token_endpoint_that_hangs_or_resets_is_classified_within_the_attempt(
    make: MakeFn, emu: VertexEmulator, service_account: ServiceAccount, fault: Fault, kind: ErrorKind
) -> None:
    emu.inject_token_fault(fault)
    account_target = target(service_account)
    bounded = UpstreamTarget(credential=account_target.credential, timeout=0.5)
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a"), bounded)
    assert info.value.kind is kind and not [r for r in emu.requests if r.path.endswith(":predict")]
