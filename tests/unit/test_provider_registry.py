"""Provider names, aliases and the adapter registry."""

from __future__ import annotations

import pytest

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.azure_openai.adapter import AzureOpenAIAdapter
from imagegateway_server.providers.kit.interface import ProviderAdapter, UpstreamTarget
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.providers.openai.adapter import OpenAIAdapter
from imagegateway_server.providers.registry import (
    IMAGE_PROVIDERS,
    ProviderRegistry,
    canonical_provider,
    default_registry,
)
from imagegateway_server.providers.stability.adapter import StabilityAdapter


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("openai", "openai"),
        ("OpenAI", "openai"),
        ("open-ai", "openai"),
        (" openai ", "openai"),
        ("stability-ai", "stability-ai"),
        ("stabilityai", "stability-ai"),
        ("Stability", "stability-ai"),
        ("stability_ai", "stability-ai"),
        ("STABILITY-AI", "stability-ai"),
        ("azure-openai", "azure-openai"),
        ("Azure-OpenAI", "azure-openai"),
        ("bfl", "black-forest-labs"),
        ("Black-Forest-Labs", "black-forest-labs"),
        ("fal", "fal-ai"),
        ("FAL-AI", "fal-ai"),
    ],
)
def test_portkey_spellings_are_canonicalised(spelling: str, canonical: str) -> None:
    assert canonical_provider(spelling) == canonical


@pytest.mark.parametrize("spelling", ["anthropic", "", "open ai", "stability-ai-v2"])
def test_unknown_provider_is_an_invalid_argument_naming_provider(spelling: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        canonical_provider(spelling)
    assert info.value.param == "provider"
    assert "openai" in info.value.message


def test_image_providers_are_the_canonical_names() -> None:
    assert (
        frozenset(
            {
                "azure-openai",
                "bedrock",
                "black-forest-labs",
                "fal-ai",
                "fireworks-ai",
                "google",
                "openai",
                "recraft-ai",
                "stability-ai",
                "together-ai",
                "vertex-ai",
                "x-ai",
            }
        )
        == IMAGE_PROVIDERS
    )


class _Fake:
    name = "openai"

    def __init__(self, fail_close: bool = False) -> None:
        self.closed = False
        self._fail = fail_close

    def default_model(self) -> str:
        return "m"

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True
        if self._fail:
            raise RuntimeError("boom")


async def test_registry_finds_adapters_by_any_spelling_and_closes_all() -> None:
    failing, fine = _Fake(fail_close=True), _Fake()
    adapters: dict[str, ProviderAdapter] = {"Open-AI": failing, "stabilityai": fine}
    registry = ProviderRegistry(adapters)
    assert registry.names == {"openai", "stability-ai"}
    assert registry.get("openai") is failing
    assert registry.get("stability") is fine
    await registry.aclose()
    assert failing.closed and fine.closed


def test_known_provider_without_an_adapter_is_refused() -> None:
    registry = ProviderRegistry({"openai": _Fake()})
    with pytest.raises(InvalidArgument) as info:
        registry.get("stability-ai")
    assert info.value.param == "provider"


def test_registry_refuses_an_unknown_name_at_construction() -> None:
    with pytest.raises(InvalidArgument):
        ProviderRegistry({"midjourney": _Fake()})


async def test_default_registry_has_every_adapter() -> None:
    registry = default_registry()
    try:
        openai = registry.get("openai")
        stability = registry.get("stability-ai")
        azure = registry.get("azure-openai")
        assert isinstance(openai, OpenAIAdapter) and openai.name == "openai"
        assert isinstance(stability, StabilityAdapter) and stability.name == "stability-ai"
        assert isinstance(azure, AzureOpenAIAdapter) and azure.name == "azure-openai"
        assert (openai.default_model(), stability.default_model(), azure.default_model()) == (
            "gpt-image-2",
            "core",
            "dall-e-3",
        )
    finally:
        await registry.aclose()


async def test_default_registry_gives_each_adapter_its_own_client_and_closes_them() -> None:
    made: list[UpstreamClient] = []

    def client_factory() -> UpstreamClient:
        made.append(UpstreamClient())
        return made[-1]

    registry = default_registry(client_factory=client_factory)
    await registry.aclose()
    assert len(made) == len(IMAGE_PROVIDERS) == len({id(client) for client in made})  # one pool per provider
    for client in made:
        with pytest.raises(RuntimeError):
            await client.send("GET", "http://127.0.0.1:9/", provider="p", attempt_seconds=1)
