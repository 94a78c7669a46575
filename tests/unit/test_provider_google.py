"""The Gemini API adapter over real sockets: URLs, the API key header, bodies, safety filters and errors.

The Gemini API emulator (tests/emulators/gemini_api.py) validates as the API does (``x-goog-api-key``,
the model per method, no Imagen seed or negative prompt) and records what the adapter sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.google.adapter import GeminiApiAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS, canonical_provider
from tests.conftest import GEMINI_SECRET
from tests.emulators import Fault, GeminiApiEmulator, VertexEmulator

SCHEMA = PROVIDER_SPECS["google"].credentials


def target(key: str = GEMINI_SECRET, *, strict: bool = False) -> UpstreamTarget:
    return UpstreamTarget(credential=SCHEMA.parse({"api_key": key}, provider="google"), strict=strict)


@pytest.fixture
def emu(google_emulators: tuple[VertexEmulator, GeminiApiEmulator]) -> GeminiApiEmulator:
    return google_emulators[1]


@pytest.fixture
async def adapter(emu: GeminiApiEmulator) -> AsyncIterator[GeminiApiAdapter]:
    made = GeminiApiAdapter(base_url=emu.base_url)
    yield made
    await made.aclose()


def test_portkeys_name_is_the_provider() -> None:
    assert canonical_provider("google") == "google" and canonical_provider("Google") == "google"


def test_without_an_override_calls_go_to_the_public_gemini_api() -> None:
    adapter = GeminiApiAdapter()
    url = adapter.model_url(target(), "gemini-2.5-flash-image", "generateContent")
    assert url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash-image:generateContent"
    custom = UpstreamTarget(credential=target().credential, base_url="https://proxy.example/gemini/")
    assert adapter.model_url(custom, "imagen-4.0-generate-001", "predict") == (
        "https://proxy.example/gemini/models/imagen-4.0-generate-001:predict"
    )


async def test_a_gemini_model_gets_one_generate_content_call_per_image(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator
) -> None:
    request = ImageRequest(prompt="a lighthouse", model="gemini-3-pro-image-preview", n=2, size="1792x1024", seed=7)
    result = await adapter.generate(request, target())
    assert len(result.images) == 2 and len(emu.requests) == 2
    sent = sorted((r.json for r in emu.requests), key=lambda body: body["generationConfig"]["seed"])  # type: ignore[index]
    assert sent[0] == {
        "contents": [{"role": "user", "parts": [{"text": "a lighthouse"}]}],
        "generationConfig": {
            "responseModalities": ["IMAGE"],
            "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
            "seed": 7,
        },
    }
    assert sent[1]["generationConfig"]["seed"] == 8  # type: ignore[index]
    assert all(r.headers["x-goog-api-key"] == GEMINI_SECRET for r in emu.requests)
    assert all(r.path == "/v1beta/models/gemini-3-pro-image-preview:generateContent" for r in emu.requests)
    image = result.images[0]
    assert (image.provider, image.model, image.size) == ("google", "gemini-3-pro-image-preview", "2752x1536")
    assert "n=2->2x1" in result.translations and "size=1792x1024->16:9" in result.translations


async def test_imagen_on_the_gemini_api_is_one_predict_call(adapter: GeminiApiAdapter, emu: GeminiApiEmulator) -> None:
    request = ImageRequest(prompt="a cat", model="imagen-4.0-generate-001", n=3, size="1024x1024")
    result = await adapter.generate(request, target())
    (sent,) = emu.requests
    assert sent.path == "/v1beta/models/imagen-4.0-generate-001:predict"
    assert sent.json == {
        "instances": [{"prompt": "a cat"}],
        "parameters": {"sampleCount": 3, "aspectRatio": "1:1", "sampleImageSize": "1K", "includeRaiReason": True},
    }
    assert len(result.images) == 3 and result.images[0].size == "1024x1024"


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="a", model="imagen-4.0-generate-001", seed=1), "seed"),
        (ImageRequest(prompt="a", model="imagen-4.0-generate-001", negative_prompt="blur"), "negative_prompt"),
        (ImageRequest(prompt="a", model="gemini-2.5-flash-image", quality="hd"), "quality"),
        (ImageRequest(prompt="a", model="gemini-2.5-flash-image", style="vivid"), "style"),
        (ImageRequest(prompt="a", model="gemini-2.5-flash-image", output_format="jpeg"), "output_format"),
        (ImageRequest(prompt="a", model="imagen-4.0-generate-001", n=5), "n"),
        (ImageRequest(prompt="a", model="imagen-4.0-generate-001", output_format="webp"), "output_format"),
        (ImageRequest(prompt="a", model="dall-e-3"), "model"),
    ],
)
async def test_what_a_model_lacks_is_refused_by_name_before_any_call(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator, request_: ImageRequest, param: str
) -> None:
    with pytest.raises(ProviderError) as info:
        await adapter.generate(request_, target())
    assert info.value.kind is ErrorKind.BAD_REQUEST and info.value.param == param
    assert not emu.requests


async def test_strict_mode_refuses_a_size_the_model_cannot_make(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator
) -> None:
    request = ImageRequest(prompt="a", model="gemini-2.5-flash-image", size="2048x2048")
    with pytest.raises(ProviderError) as info:
        await adapter.generate(request, target(strict=True))
    assert info.value.param == "size" and not emu.requests
    result = await adapter.generate(request, target())
    assert result.translations == ("image_size=2K->1K",)


async def test_image_safety_is_a_content_policy_failure(adapter: GeminiApiAdapter, emu: GeminiApiEmulator) -> None:
    emu.inject(Fault.content_filter())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="gemini-2.5-flash-image"), target())
    assert info.value.kind is ErrorKind.CONTENT_POLICY and "IMAGE_SAFETY" in info.value.message


async def test_a_blocked_prompt_is_a_content_policy_failure(adapter: GeminiApiAdapter, emu: GeminiApiEmulator) -> None:
    emu.inject(Fault.moderation_denied())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="gemini-2.5-flash-image"), target())
    assert info.value.kind is ErrorKind.CONTENT_POLICY and "blockReason SAFETY" in info.value.message
    emu.inject(Fault.moderation_denied())
    with pytest.raises(ProviderError) as imagen:
        await adapter.generate(ImageRequest(prompt="a", model="imagen-4.0-fast-generate-001"), target())
    assert imagen.value.kind is ErrorKind.CONTENT_POLICY and imagen.value.status_code == 400


async def test_imagen_dropping_some_images_serves_the_rest_and_says_so(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator
) -> None:
    emu.drop_next_images(1)
    result = await adapter.generate(ImageRequest(prompt="a", model="imagen-4.0-fast-generate-001", n=3), target())
    assert len(result.images) == 2 and "n=3->2" in result.translations
    emu.inject(Fault.content_filter())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="imagen-4.0-fast-generate-001", n=2), target())
    assert info.value.kind is ErrorKind.CONTENT_POLICY and "safety filter threshold" in info.value.message


@pytest.mark.parametrize(
    ("fault", "kind", "code"),
    [
        (Fault.rate_limited(), ErrorKind.RATE_LIMITED, "RESOURCE_EXHAUSTED"),
        (Fault.status(500), ErrorKind.UNAVAILABLE, "INTERNAL"),
        (Fault.status(503), ErrorKind.UNAVAILABLE, "UNAVAILABLE"),
        (Fault.status(403), ErrorKind.PERMISSION_DENIED, "PERMISSION_DENIED"),
        (Fault.status(504), ErrorKind.TIMEOUT, "DEADLINE_EXCEEDED"),
        (Fault.status(503, "<html>bad gateway</html>"), ErrorKind.UNAVAILABLE, None),
    ],
)
async def test_googles_envelope_is_classified_once(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator, fault: Fault, kind: ErrorKind, code: str | None
) -> None:
    emu.inject(fault)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a", model="gemini-2.5-flash-image"), target())
    assert info.value.kind is kind and info.value.code == code


async def test_a_wrong_key_is_an_authentication_failure_without_the_key(adapter: GeminiApiAdapter) -> None:
    wrong = "AIzaSyWrong-key-for-the-test-0123456789"
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a"), target(wrong))
    assert info.value.kind is ErrorKind.AUTHENTICATION and info.value.code == "API_KEY_INVALID"
    assert wrong not in info.value.message


@pytest.mark.parametrize("fault", [Fault.malformed(), Fault.empty(), Fault.status(200, {"candidates": []})])
async def test_a_broken_answer_is_an_upstream_bug(
    adapter: GeminiApiAdapter, emu: GeminiApiEmulator, fault: Fault
) -> None:
    emu.inject(fault)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a"), target())
    assert info.value.kind is ErrorKind.UPSTREAM_BUG and info.value.status_code == 502


def test_credentials_are_an_api_key_only() -> None:
    credential: Credential = SCHEMA.parse({"api_key": GEMINI_SECRET}, provider="google")
    assert GEMINI_SECRET not in repr(credential)
