"""OpenAI with a custom host: a model outside OpenAI's tables passes through untranslated, over real sockets.

The OpenAI emulator plays an OpenAI-compatible server (vLLM, LocalAI, ...): a scripted 200 answers
whatever model it is asked for, and the request it recorded shows what the adapter sent.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from types import MappingProxyType

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.openai.adapter import OpenAIAdapter
from tests.conftest import OPENAI_SECRET, Emulators
from tests.credentials import api_key
from tests.emulators import Fault, OpenAIEmulator

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC")
CREDENTIAL = api_key(OPENAI_SECRET)


@pytest.fixture
def emu(emulators: Emulators) -> OpenAIEmulator:
    return emulators.openai


@pytest.fixture
async def openai(emu: OpenAIEmulator) -> AsyncIterator[OpenAIAdapter]:
    adapter = OpenAIAdapter(base_url=emu.base_url)  # the operator's base URL: no custom host on the target
    yield adapter
    await adapter.aclose()


def answer() -> Fault:
    return Fault.status(200, {"created": 1, "data": [{"b64_json": base64.b64encode(PNG).decode()}]})


async def test_an_unknown_model_on_a_custom_host_is_sent_untranslated_and_said_so(
    openai: OpenAIAdapter, emu: OpenAIEmulator
) -> None:
    emu.inject(answer())
    request = ImageRequest(
        prompt="a fox",
        model="black-forest-labs/FLUX.1-schnell",
        size="640x480",
        seed=3,
        negative_prompt="blur",
        extra=MappingProxyType({"num_inference_steps": 4}),
    )
    result = await openai.generate(request, UpstreamTarget(credential=CREDENTIAL, base_url=emu.base_url))
    assert emu.requests[-1].json == {
        "prompt": "a fox",
        "model": "black-forest-labs/FLUX.1-schnell",
        "n": 1,
        "size": "640x480",
        "seed": 3,
        "negative_prompt": "blur",
        "num_inference_steps": 4,
        "response_format": "b64_json",
    }
    assert result.translations == (
        "model=black-forest-labs/FLUX.1-schnell passed through untranslated to a custom host",
    )
    image = result.images[0]
    assert (image.provider, image.model, image.size) == ("openai", "black-forest-labs/FLUX.1-schnell", "1x1")


async def test_urls_are_asked_of_a_custom_host_when_wanted(openai: OpenAIAdapter, emu: OpenAIEmulator) -> None:
    emu.inject(Fault.status(200, {"created": 1, "data": [{"url": "https://cdn.example/x.png"}]}))
    request = ImageRequest(prompt="a fox", model="sdxl-turbo", response_format=ResponseFormat.URL)
    result = await openai.generate(request, UpstreamTarget(credential=CREDENTIAL, base_url=emu.base_url))
    assert emu.requests[-1].json is not None and emu.requests[-1].json["response_format"] == "url"
    assert result.images[0].url == "https://cdn.example/x.png"


async def test_without_a_custom_host_the_same_parameters_are_refused_as_before(
    openai: OpenAIAdapter, emu: OpenAIEmulator
) -> None:
    request = ImageRequest(prompt="a fox", model="black-forest-labs/FLUX.1-schnell", seed=3)
    with pytest.raises(ProviderError) as info:
        await openai.generate(request, UpstreamTarget(credential=CREDENTIAL))
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "seed")
    assert emu.requests == []


async def test_openais_own_models_are_still_translated_on_a_custom_host(
    openai: OpenAIAdapter, emu: OpenAIEmulator
) -> None:
    result = await openai.generate(
        ImageRequest(prompt="a fox", model="dall-e-3", size="1000x1000"),
        UpstreamTarget(credential=CREDENTIAL, base_url=emu.base_url),
    )
    assert emu.requests[-1].json is not None and emu.requests[-1].json["size"] == "1024x1024"
    assert result.translations == ("size=1000x1000->1024x1024",)


@pytest.mark.parametrize(
    ("base_url", "model", "passes"),
    [
        (None, "my-model", False),
        ("https://api.openai.com/v1", "my-model", False),
        ("https://API.OpenAI.com/v1/", "my-model", False),
        ("http://10.0.0.5:8000/v1", "my-model", True),
        ("http://10.0.0.5:8000/v1", "gpt-image-1", False),
    ],
)
def test_only_a_custom_host_and_an_unknown_model_pass_through(base_url: str | None, model: str, passes: bool) -> None:
    target = UpstreamTarget(credential=CREDENTIAL, base_url=base_url)
    assert OpenAIAdapter().passes_through(model, target) is passes
