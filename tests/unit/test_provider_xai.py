"""The xAI adapter over real sockets: size to aspect_ratio and resolution, refusals, answers and errors.

The xAI emulator refuses ``size``, ``style`` and ``quality`` as xAI does, answers a wrong key with a
400 ``{"code", "error"}``, and records what the adapter sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.providers.xai.adapter import XAIAdapter
from tests.adapter_failures import generate_fails
from tests.credentials import api_key
from tests.emulators import Fault, XAIEmulator
from tests.model_host_emulators import XAI_SECRET, Hosts, host_emulators, hosts

__all__ = ["host_emulators", "hosts"]

TARGET = UpstreamTarget(credential=api_key(XAI_SECRET, "x-ai"))


@pytest.fixture
def emu(hosts: Hosts) -> XAIEmulator:
    return hosts.xai


@pytest.fixture
async def xai(emu: XAIEmulator) -> AsyncIterator[XAIAdapter]:
    adapter = XAIAdapter(base_url=emu.base_url)
    yield adapter
    await adapter.aclose()


async def fails(adapter: XAIAdapter, request: ImageRequest, target: UpstreamTarget = TARGET) -> ProviderError:
    return await generate_fails(adapter, request, target)


def test_portkeys_spelling_resolves() -> None:
    assert {canonical_provider(n) for n in ("x-ai", "xai", "grok")} == {"x-ai"}


async def test_size_becomes_aspect_ratio_and_resolution(xai: XAIAdapter, emu: XAIEmulator) -> None:
    result = await xai.generate(ImageRequest(prompt="a fox", size="1792x1024", n=2), TARGET)
    sent = emu.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {XAI_SECRET}"
    assert sent.json == {
        "prompt": "a fox",
        "model": "grok-imagine-image",
        "n": 2,
        "aspect_ratio": "16:9",
        "resolution": "2k",
        "response_format": "b64_json",
    }
    assert result.translations == ("size=1792x1024->16:9", "size=1792x1024->resolution=2k")
    image = result.images[0]
    assert image.mime_type == "image/jpeg" and image.revised_prompt and image.width > image.height
    assert (image.provider, image.model, image.size) == ("x-ai", "grok-imagine-image", f"{image.width}x{image.height}")


async def test_a_square_size_at_1k_is_no_translation(xai: XAIAdapter, emu: XAIEmulator) -> None:
    result = await xai.generate(ImageRequest(prompt="a fox", size="1024x1024"), TARGET)
    assert emu.requests[-1].json is not None and emu.requests[-1].json["aspect_ratio"] == "1:1"
    assert result.translations == ("size=1024x1024->resolution=1k",)


async def test_grok_2_takes_its_one_size_and_refuses_others(xai: XAIAdapter, emu: XAIEmulator) -> None:
    result = await xai.generate(ImageRequest(prompt="a fox", model="grok-2-image", size="1024x768"), TARGET)
    assert emu.requests[-1].json == {"prompt": "a fox", "model": "grok-2-image", "n": 1, "response_format": "b64_json"}
    assert result.images[0].size == "1024x768"
    error = await fails(xai, ImageRequest(prompt="a fox", model="grok-2-image", size="1024x1024"))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "size") and "1024x768" in error.message
    assert len(emu.requests) == 1


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", style="vivid"), "style"),
        (ImageRequest(prompt="x", quality="hd"), "quality"),
        (ImageRequest(prompt="x", seed=1), "seed"),
        (ImageRequest(prompt="x", model="grok-2-image", aspect_ratio="16:9"), "aspect_ratio"),
        (ImageRequest(prompt="x", aspect_ratio="5:4"), "aspect_ratio"),
        (ImageRequest(prompt="x", n=11), "n"),
    ],
)
async def test_what_xai_refuses_is_refused_here_before_any_call(
    xai: XAIAdapter, emu: XAIEmulator, request_: ImageRequest, param: str
) -> None:
    error = await fails(xai, request_)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


async def test_a_named_decimal_ratio_is_sent(xai: XAIAdapter, emu: XAIEmulator) -> None:
    await xai.generate(ImageRequest(prompt="x", aspect_ratio="19.5:9"), TARGET)
    assert emu.requests[-1].json is not None and emu.requests[-1].json["aspect_ratio"] == "19.5:9"


async def test_urls_are_handed_on_when_wanted(xai: XAIAdapter, emu: XAIEmulator) -> None:
    result = await xai.generate(ImageRequest(prompt="x", response_format=ResponseFormat.URL), TARGET)
    assert emu.requests[-1].json is not None and emu.requests[-1].json["response_format"] == "url"
    assert result.images[0].url and result.images[0].data is None


async def test_a_wrong_key_is_a_400_classified_as_authentication(xai: XAIAdapter) -> None:
    wrong = "xai-wrong-key-9876543210"
    error = await fails(xai, ImageRequest(prompt="x"), UpstreamTarget(credential=api_key(wrong, "x-ai")))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.AUTHENTICATION, 400, "invalid_api_key")
    assert wrong not in error.message


async def test_moderation_is_a_content_policy_failure(xai: XAIAdapter, emu: XAIEmulator) -> None:
    emu.inject(Fault.content_filter())
    assert (await fails(xai, ImageRequest(prompt="x"))).kind is ErrorKind.CONTENT_POLICY


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.rate_limited(retry_after=1), ErrorKind.RATE_LIMITED),
        (Fault.status(503), ErrorKind.UNAVAILABLE),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG),
        (Fault.status(404), ErrorKind.NOT_FOUND),
    ],
)
async def test_faults_are_classified(xai: XAIAdapter, emu: XAIEmulator, fault: Fault, kind: ErrorKind) -> None:
    emu.inject(fault)
    assert (await fails(xai, ImageRequest(prompt="x"))).kind is kind


async def test_strict_mode_refuses_a_size_that_would_become_a_ratio_and_resolution(
    xai: XAIAdapter, emu: XAIEmulator
) -> None:
    strict = UpstreamTarget(credential=TARGET.credential, strict=True)
    error = await fails(xai, ImageRequest(prompt="x", size="1920x1080"), strict)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "size") and "strict" in error.message
    assert emu.requests == []
