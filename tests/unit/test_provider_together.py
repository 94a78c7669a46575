"""The Together AI adapter over real sockets: body translation, answers, content filter and errors.

The Together emulator validates as Together does (width/height limits per model, ``response_format``
``base64`` | ``url``, unknown fields refused) and records what the adapter sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS, canonical_provider
from imagegateway_server.providers.together.adapter import TogetherAdapter
from tests.adapter_failures import generate_fails
from tests.credentials import api_key
from tests.emulators import Fault, TogetherEmulator
from tests.model_host_emulators import TOGETHER_SECRET, Hosts, host_emulators, hosts

__all__ = ["host_emulators", "hosts"]  # fixtures used by the tests below

TARGET = UpstreamTarget(credential=api_key(TOGETHER_SECRET, "together-ai"))
SCHNELL = "black-forest-labs/FLUX.1-schnell"
DEV = "black-forest-labs/FLUX.1-dev"
PRO = "black-forest-labs/FLUX.1.1-pro"


@pytest.fixture
def emu(hosts: Hosts) -> TogetherEmulator:
    return hosts.together


@pytest.fixture
async def together(emu: TogetherEmulator) -> AsyncIterator[TogetherAdapter]:
    adapter = TogetherAdapter(base_url=emu.base_url)
    yield adapter
    await adapter.aclose()


async def fails(adapter: TogetherAdapter, request: ImageRequest, target: UpstreamTarget = TARGET) -> ProviderError:
    return await generate_fails(adapter, request, target)


def test_portkeys_spelling_and_aliases_resolve() -> None:
    assert {canonical_provider(n) for n in ("together-ai", "together", "TogetherAI")} == {"together-ai"}
    assert PROVIDER_SPECS["together-ai"].public_hosts == frozenset({"api.together.xyz", "api.together.ai"})


async def test_size_becomes_width_and_height_and_base64_is_asked(
    together: TogetherAdapter, emu: TogetherEmulator
) -> None:
    request = ImageRequest(prompt="a fox", model=DEV, size="1024x768", seed=7, negative_prompt="blur", n=2)
    result = await together.generate(request, TARGET)
    sent = emu.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {TOGETHER_SECRET}"
    assert sent.json == {
        "prompt": "a fox",
        "model": DEV,
        "n": 2,
        "width": 1024,
        "height": 768,
        "seed": 7,
        "negative_prompt": "blur",
        "response_format": "base64",
    }
    assert len(result.images) == 2 and result.translations == ()
    image = result.images[0]
    assert (image.provider, image.model, image.size, image.mime_type) == ("together-ai", DEV, "1024x768", "image/jpeg")


async def test_a_size_outside_the_models_limits_is_translated_to_the_nearest(
    together: TogetherAdapter, emu: TogetherEmulator
) -> None:
    result = await together.generate(ImageRequest(prompt="a fox", model=PRO, size="1792x1024"), TARGET)
    sent = emu.requests[-1].json
    assert sent is not None and (sent["width"], sent["height"]) == (1344, 768)  # the same 7:4 ratio
    assert result.translations == ("size=1792x1024->1344x768",)
    assert result.images[0].size == "1344x768"


async def test_strict_mode_refuses_the_translation_before_any_call(
    together: TogetherAdapter, emu: TogetherEmulator
) -> None:
    strict = UpstreamTarget(credential=TARGET.credential, strict=True)
    error = await fails(together, ImageRequest(prompt="a fox", model=PRO, size="1792x1024"), strict)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "size")
    assert emu.requests == []


async def test_quality_becomes_steps_and_cfg_scale_guidance(together: TogetherAdapter, emu: TogetherEmulator) -> None:
    result = await together.generate(ImageRequest(prompt="a fox", quality="hd", cfg_scale=4.5), TARGET)
    sent = emu.requests[-1].json
    assert sent is not None and (sent["model"], sent["steps"], sent["guidance_scale"]) == (SCHNELL, 8, 4.5)
    assert result.translations == ("quality=hd->steps=8",)


async def test_a_url_is_handed_on_when_urls_are_wanted(together: TogetherAdapter, emu: TogetherEmulator) -> None:
    result = await together.generate(ImageRequest(prompt="a fox", response_format=ResponseFormat.URL), TARGET)
    assert emu.requests[-1].json is not None and emu.requests[-1].json["response_format"] == "url"
    image = result.images[0]
    assert image.data is None and image.url and image.url.startswith(emu.origin)
    assert image.size == "1024x1024"  # what was asked: the bytes were not fetched


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", style="vivid"), "style"),
        (ImageRequest(prompt="x", user="u1"), "user"),
        (ImageRequest(prompt="x", output_format="webp"), "output_format"),
        (ImageRequest(prompt="x", n=5), "n"),
        (ImageRequest(prompt="x", model=PRO, quality="high"), "quality"),
    ],
)
async def test_what_together_cannot_take_is_refused_before_any_call(
    together: TogetherAdapter, emu: TogetherEmulator, request_: ImageRequest, param: str
) -> None:
    error = await fails(together, request_)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


async def test_the_safety_checker_is_a_content_policy_failure(together: TogetherAdapter, emu: TogetherEmulator) -> None:
    emu.inject(Fault.content_filter())
    error = await fails(together, ImageRequest(prompt="x"))
    assert error.kind is ErrorKind.CONTENT_POLICY


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.rate_limited(retry_after=2), ErrorKind.RATE_LIMITED),
        (Fault.status(503), ErrorKind.UNAVAILABLE),
        (Fault.status(500), ErrorKind.UNAVAILABLE),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG),
        (Fault.empty(), ErrorKind.UPSTREAM_BUG),
    ],
)
async def test_faults_are_classified(
    together: TogetherAdapter, emu: TogetherEmulator, fault: Fault, kind: ErrorKind
) -> None:
    emu.inject(fault)
    error = await fails(together, ImageRequest(prompt="x"))
    assert error.kind is kind
    if kind is ErrorKind.RATE_LIMITED:
        assert error.retry_after == 2


async def test_a_wrong_key_is_authentication_and_never_echoed(together: TogetherAdapter) -> None:
    wrong = "together-wrong-key-9876543210"
    error = await fails(together, ImageRequest(prompt="x"), UpstreamTarget(credential=api_key(wrong, "together-ai")))
    assert (error.kind, error.status_code) == (ErrorKind.AUTHENTICATION, 401)
    assert wrong not in error.message


async def test_an_unknown_model_is_sent_as_given_and_together_answers_not_found(together: TogetherAdapter) -> None:
    error = await fails(together, ImageRequest(prompt="x", model="someone/new-model"))
    assert error.kind is ErrorKind.NOT_FOUND
