"""The Azure OpenAI adapter over real sockets: URL, auth headers, body, content filter and error classification.

The Azure emulator (tests/emulators) validates as Azure does (``api-key`` or Bearer, ``api-version``
required, the deployment in the path) and records what the adapter sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.azure_openai.adapter import DEFAULT_API_VERSION, AzureOpenAIAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS
from tests.conftest import AZURE_AD_TOKEN, AZURE_SECRET, Emulators
from tests.emulators import AzureOpenAIEmulator, Fault

SCHEMA = PROVIDER_SPECS["azure-openai"].credentials


def credential(**fields: str) -> Credential:
    raw = {"api_key": AZURE_SECRET, "resource_name": "my-resource", "deployment_id": "dalle3", **fields}
    return SCHEMA.parse({k: v for k, v in raw.items() if v}, provider="azure-openai")


@pytest.fixture
def emu(emulators: Emulators) -> AzureOpenAIEmulator:
    return emulators.azure


MakeFn = Callable[..., AzureOpenAIAdapter]


@pytest.fixture
async def make(emu: AzureOpenAIEmulator) -> AsyncIterator[MakeFn]:
    adapters: list[AzureOpenAIAdapter] = []

    def factory(**kwargs: Any) -> AzureOpenAIAdapter:
        adapter = AzureOpenAIAdapter(base_url=kwargs.pop("base_url", emu.base_url), **kwargs)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


async def test_the_call_goes_to_the_deployment_with_the_api_key_and_the_default_version(
    make: MakeFn, emu: AzureOpenAIEmulator
) -> None:
    adapter = make()
    request = ImageRequest(prompt="a cat", model="dall-e-3", size="1792x1024", quality="hd", style="natural")
    result = await adapter.generate(request, UpstreamTarget(credential=credential()))
    sent = emu.requests[-1]
    assert sent.path == "/openai/deployments/dalle3/images/generations"
    assert sent.query == {"api-version": DEFAULT_API_VERSION}
    assert sent.headers["api-key"] == AZURE_SECRET
    assert "authorization" not in sent.headers
    assert sent.json == {
        "prompt": "a cat",
        "model": "dall-e-3",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "b64_json",
    }
    assert result.model == "dall-e-3"
    assert (result.images[0].width, result.images[0].height) == (1792, 1024)
    assert result.images[0].revised_prompt


async def test_an_entra_token_is_sent_as_a_bearer_and_the_version_as_given(
    make: MakeFn, emu: AzureOpenAIEmulator
) -> None:
    adapter = make()
    target = UpstreamTarget(
        credential=credential(
            api_key="", azure_ad_token=AZURE_AD_TOKEN, deployment_id="gpt-image", api_version="2025-04-01-preview"
        )
    )
    result = await adapter.generate(ImageRequest(prompt="a cat", model="gpt-image-1", quality="low"), target)
    sent = emu.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {AZURE_AD_TOKEN}"
    assert "api-key" not in sent.headers
    assert sent.path == "/openai/deployments/gpt-image/images/generations"
    assert sent.query == {"api-version": "2025-04-01-preview"}
    assert result.model == "gpt-image-1" and len(result.images) == 1


def test_without_an_override_the_url_is_built_from_the_resource_name() -> None:
    adapter = AzureOpenAIAdapter()
    url = adapter.endpoint(UpstreamTarget(credential=credential(api_version="2024-10-21")))
    assert url == (
        "https://my-resource.openai.azure.com/openai/deployments/dalle3/images/generations?api-version=2024-10-21"
    )


def test_custom_host_replaces_the_resource_base() -> None:
    adapter = AzureOpenAIAdapter()
    target = UpstreamTarget(credential=credential(), base_url="https://proxy.example/azure/openai/")
    assert adapter.endpoint(target).startswith("https://proxy.example/azure/openai/deployments/dalle3/images/")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("resource_name", "evil.example#"),
        ("resource_name", "a/b"),
        ("deployment_id", ".."),
        ("deployment_id", "a/../b"),
        ("api_version", "2024-10-21&x=1"),
    ],
)
def test_fields_that_go_into_the_url_are_checked_before_any_call(field: str, value: str) -> None:
    # The schema refuses them when a config or virtual key is saved ...
    with pytest.raises(InvalidArgument) as refused:
        credential(**{field: value})
    assert refused.value.param == field and value not in refused.value.message
    # ... and the adapter again before it builds a URL, whatever made the credential.
    raw = {"api_key": AZURE_SECRET, "resource_name": "my-resource", "deployment_id": "dalle3", field: value}
    unchecked = Credential.of("azure-openai", raw, SCHEMA.secret_names)
    adapter = AzureOpenAIAdapter()
    with pytest.raises(ProviderError) as info:
        adapter.endpoint(UpstreamTarget(credential=unchecked))
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.param == field
    assert value not in info.value.message


async def test_n_is_fanned_out_on_dall_e_3(make: MakeFn, emu: AzureOpenAIEmulator) -> None:
    result = await make().generate(ImageRequest(prompt="a cat", n=2), UpstreamTarget(credential=credential()))
    assert len(result.images) == 2 and len(emu.requests) == 2
    assert all(sent.json is not None and sent.json["n"] == 1 for sent in emu.requests)


async def test_url_answers_are_passed_on_when_urls_are_wanted(make: MakeFn, emu: AzureOpenAIEmulator) -> None:
    request = ImageRequest(prompt="a cat", response_format=ResponseFormat.URL)
    result = await make().generate(request, UpstreamTarget(credential=credential()))
    assert emu.requests[-1].json == {"prompt": "a cat", "model": "dall-e-3", "n": 1, "response_format": "url"}
    assert result.images[0].url and result.images[0].data is None


async def test_the_content_filter_is_a_content_policy_failure(make: MakeFn, emu: AzureOpenAIEmulator) -> None:
    emu.inject(Fault.content_filter())
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential()))
    assert info.value.kind is ErrorKind.CONTENT_POLICY
    assert info.value.code == "content_policy_violation"


async def test_a_filter_sign_only_in_inner_error_is_a_content_policy_failure(
    make: MakeFn, emu: AzureOpenAIEmulator
) -> None:
    body = {
        "error": {
            "code": "BadRequest",
            "message": "blocked",
            "inner_error": {"content_filter_results": {"sexual": {"filtered": True, "severity": "high"}}},
        }
    }
    emu.inject(Fault.status(400, body))
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential()))
    assert info.value.kind is ErrorKind.CONTENT_POLICY and info.value.code == "BadRequest"


async def test_a_200_with_a_filtered_item_is_never_served(make: MakeFn, emu: AzureOpenAIEmulator) -> None:
    item = {"b64_json": "iVBORw0KGgo=", "content_filter_results": {"violence": {"filtered": True, "severity": "high"}}}
    emu.inject(Fault.status(200, {"created": 1, "data": [item]}))
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential()))
    assert info.value.kind is ErrorKind.CONTENT_POLICY


@pytest.mark.parametrize(
    ("fields", "kind", "code"),
    [
        ({"api_key": "wrong-key"}, ErrorKind.AUTHENTICATION, "401"),
        ({"deployment_id": "missing"}, ErrorKind.NOT_FOUND, "DeploymentNotFound"),
        ({"api_version": "2023-01-01"}, ErrorKind.BAD_REQUEST, "BadRequest"),
    ],
)
async def test_azure_errors_are_classified_from_the_real_validation(
    make: MakeFn, fields: dict[str, str], kind: ErrorKind, code: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential(**fields)))
    assert info.value.kind is kind and info.value.code == code
    assert "wrong-key" not in info.value.message


async def test_a_rate_limit_carries_retry_after_ms(make: MakeFn, emu: AzureOpenAIEmulator) -> None:
    emu.inject(Fault.status(429))
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential()))
    assert info.value.kind is ErrorKind.RATE_LIMITED and info.value.retry_after == pytest.approx(1.0)


@pytest.mark.parametrize("status", [500, 503])
async def test_server_errors_are_unavailable(make: MakeFn, emu: AzureOpenAIEmulator, status: int) -> None:
    emu.inject(Fault.status(status))
    with pytest.raises(ProviderError) as info:
        await make().generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=credential()))
    assert info.value.kind is ErrorKind.UNAVAILABLE


def test_a_credential_needs_exactly_one_of_key_and_token() -> None:
    with pytest.raises(Exception, match="exactly one of api_key, azure_ad_token"):
        credential(azure_ad_token=AZURE_AD_TOKEN)
    with pytest.raises(Exception, match="exactly one of"):
        credential(api_key="")
    with pytest.raises(Exception, match="required"):
        credential(deployment_id="")
