"""The OpenAI and Stability adapters over real sockets against the local provider emulators."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.openai.adapter import OpenAIAdapter
from imagegateway_server.providers.stability.adapter import StabilityAdapter
from tests.credentials import api_key
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator

OPENAI_KEY = "sk-test-openai-integration-0123456789"
STABILITY_KEY = "sk-test-stability-integration-0123456789"


@pytest.fixture
async def openai_emu() -> AsyncIterator[OpenAIEmulator]:
    emu = OpenAIEmulator(api_key=OPENAI_KEY)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def stability_emu() -> AsyncIterator[StabilityEmulator]:
    emu = StabilityEmulator(api_key=STABILITY_KEY)
    await emu.start()
    yield emu
    await emu.stop()


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIAdapter]:
    adapter = OpenAIAdapter()
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def stability() -> AsyncIterator[StabilityAdapter]:
    adapter = StabilityAdapter()
    yield adapter
    await adapter.aclose()


def openai_target(emu: OpenAIEmulator, *, key: str = OPENAI_KEY, timeout: float | None = 10.0) -> UpstreamTarget:
    return UpstreamTarget(credential=api_key(key), base_url=emu.base_url, timeout=timeout)


def stability_target(
    emu: StabilityEmulator, *, key: str = STABILITY_KEY, timeout: float | None = 10.0
) -> UpstreamTarget:
    return UpstreamTarget(credential=api_key(key), base_url=emu.base_url, timeout=timeout)


async def expect_error(call: object) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await call  # type: ignore[misc]
    return info.value


# -- OpenAI ----------------------------------------------------------------------------------------


async def test_dall_e_3_generates_bytes_with_revised_prompt_and_request_id(
    openai: OpenAIAdapter, openai_emu: OpenAIEmulator
) -> None:
    request = ImageRequest(prompt="a red fox", model="dall-e-3", size="1792x1024", style="natural")
    result = await openai.generate(request, openai_target(openai_emu))
    sent = openai_emu.requests[-1]
    assert sent.json == {
        "prompt": "a red fox",
        "model": "dall-e-3",
        "n": 1,
        "size": "1792x1024",
        "style": "natural",
        "response_format": "b64_json",
    }
    assert sent.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    (image,) = result.images
    assert (image.mime_type, image.width, image.height) == ("image/png", 1792, 1024)
    assert image.revised_prompt
    assert result.provider_request_id == sent.request_id


async def test_dall_e_2_url_format_returns_urls(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    request = ImageRequest(
        prompt="a red fox", model="dall-e-2", n=2, size="256x256", response_format=ResponseFormat.URL
    )
    result = await openai.generate(request, openai_target(openai_emu))
    assert openai_emu.requests[-1].json == {
        "prompt": "a red fox",
        "model": "dall-e-2",
        "n": 2,
        "size": "256x256",
        "response_format": "url",
    }
    assert all(image.data is None and image.url for image in result.images)
    assert len(result.images) == 2


async def test_gpt_image_gets_its_own_parameters_and_reports_usage(
    openai: OpenAIAdapter, openai_emu: OpenAIEmulator
) -> None:
    request = ImageRequest(
        prompt="a red fox",
        model="gpt-image-1",
        size="1536x1024",
        quality="low",
        background="opaque",
        output_format="jpeg",
        output_compression=70,
        moderation="low",
    )
    result = await openai.generate(request, openai_target(openai_emu))
    sent = openai_emu.requests[-1].json
    assert sent is not None and "response_format" not in sent and "style" not in sent
    (image,) = result.images
    assert (image.mime_type, image.width, image.height) == ("image/jpeg", 1536, 1024)
    assert result.usage is not None and result.usage["total_tokens"] > 0


async def test_refused_parameter_never_reaches_openai(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    error = await expect_error(openai.generate(ImageRequest(prompt="x", seed=1), openai_target(openai_emu)))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "seed")
    assert openai_emu.requests == []


async def test_openai_validation_error_is_a_bad_request(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    # dall-e-3 takes 4000 prompt characters, the gateway up to 32000: only the upstream knows.
    error = await expect_error(
        openai.generate(ImageRequest(prompt="x" * 4001, model="dall-e-3"), openai_target(openai_emu))
    )
    assert (error.kind, error.status_code) == (ErrorKind.BAD_REQUEST, 400)
    assert "4000" in error.message


async def test_unknown_openai_model_is_not_found(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    error = await expect_error(openai.generate(ImageRequest(prompt="x", model="dall-e-9"), openai_target(openai_emu)))
    assert (error.kind, error.status_code) == (ErrorKind.NOT_FOUND, 404)


async def test_wrong_openai_key_is_authentication_and_never_echoed(
    openai: OpenAIAdapter, openai_emu: OpenAIEmulator
) -> None:
    wrong = "sk-wrong-key-abcdefghijklmnop-9876"
    error = await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu, key=wrong)))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.AUTHENTICATION, 401, "invalid_api_key")
    assert wrong not in error.message and "9876" not in error.message


@pytest.mark.parametrize("model", ["dall-e-3", "gpt-image-1"])
async def test_openai_safety_rejection_is_content_policy(
    openai: OpenAIAdapter, openai_emu: OpenAIEmulator, model: str
) -> None:
    openai_emu.inject(Fault.content_filter())
    error = await expect_error(openai.generate(ImageRequest(prompt="x", model=model), openai_target(openai_emu)))
    assert (error.kind, error.status_code) == (ErrorKind.CONTENT_POLICY, 400)
    assert error.code in ("content_policy_violation", "moderation_blocked")


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        (Fault.status(503), ErrorKind.UNAVAILABLE, 503),
        (Fault.status(500), ErrorKind.UNAVAILABLE, 500),
        (Fault.status(502, "<html>bad gateway</html>"), ErrorKind.UNAVAILABLE, 502),
        (Fault.status(403), ErrorKind.PERMISSION_DENIED, 403),
        (Fault.status(408), ErrorKind.TIMEOUT, 408),
        (Fault.reset(), ErrorKind.UNAVAILABLE, 502),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG, 502),
        (Fault.truncated(), ErrorKind.UNAVAILABLE, 502),
        (Fault.empty(), ErrorKind.UPSTREAM_BUG, 502),
    ],
)
async def test_openai_faults_are_classified(
    openai: OpenAIAdapter, openai_emu: OpenAIEmulator, fault: Fault, kind: ErrorKind, status: int
) -> None:
    openai_emu.inject(fault)
    error = await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu)))
    assert (error.kind, error.status_code) == (kind, status)
    assert error.provider == "openai"


async def test_openai_reset_says_so(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    openai_emu.inject(Fault.reset())
    error = await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu)))
    assert "reset" in error.message or "closed the connection" in error.message


async def test_openai_rate_limit_carries_retry_after(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    openai_emu.inject(Fault.rate_limited(retry_after=2))
    error = await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu)))
    assert (error.kind, error.status_code, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, 2.0)


async def test_openai_hang_times_out_as_408(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    openai_emu.inject(Fault.hang())
    error = await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu, timeout=0.3)))
    assert (error.kind, error.status_code) == (ErrorKind.TIMEOUT, 408)


async def test_openai_body_over_the_cap_is_an_upstream_bug(openai_emu: OpenAIEmulator) -> None:
    adapter = OpenAIAdapter(max_body_bytes=20_000)
    try:
        openai_emu.inject(Fault.image_bytes(50_000))
        error = await expect_error(adapter.generate(ImageRequest(prompt="x"), openai_target(openai_emu)))
    finally:
        await adapter.aclose()
    assert (error.kind, error.status_code) == (ErrorKind.UPSTREAM_BUG, 502)


async def test_openai_keeps_working_after_faults(openai: OpenAIAdapter, openai_emu: OpenAIEmulator) -> None:
    for fault in (Fault.reset(), Fault.truncated(), Fault.status(503)):
        openai_emu.inject(fault)
        await expect_error(openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu)))
    result = await openai.generate(ImageRequest(prompt="x"), openai_target(openai_emu))
    assert result.images[0].data


# -- Stability -------------------------------------------------------------------------------------


async def test_v1_6_seed_scenario_request_and_answer(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    request = ImageRequest(
        prompt="a lighthouse at dusk",
        model="stable-diffusion-v1-6",
        n=2,
        seed=1234,
        negative_prompt="blurry",
        cfg_scale=8.0,
        style_preset="photographic",
        size="768x512",
        user="end-user-7",
    )
    result = await stability.generate(request, stability_target(stability_emu))
    sent = stability_emu.requests[-1]
    assert sent.path == "/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert sent.json == {
        "text_prompts": [{"text": "a lighthouse at dusk", "weight": 1}, {"text": "blurry", "weight": -1}],
        "width": 768,
        "height": 512,
        "samples": 2,
        "seed": 1234,
        "cfg_scale": 8.0,
        "style_preset": "photographic",
    }
    assert sent.headers["stability-client-user-id"] == "end-user-7"
    assert [image.seed for image in result.images] == [1234, 1235]
    assert all((i.mime_type, i.width, i.height) == ("image/png", 768, 512) for i in result.images)


async def test_sdxl_default_size(stability: StabilityAdapter, stability_emu: StabilityEmulator) -> None:
    result = await stability.generate(
        ImageRequest(prompt="x", model="stable-diffusion-xl-1024-v1-0"), stability_target(stability_emu)
    )
    assert (result.images[0].width, result.images[0].height) == (1024, 1024)


async def test_core_posts_multipart_and_maps_size_to_aspect_ratio(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    request = ImageRequest(
        prompt="a lighthouse",
        size="1792x1024",
        seed=5,
        output_format="webp",
        negative_prompt="fog",
        style_preset="cinematic",
    )
    result = await stability.generate(request, stability_target(stability_emu))
    sent = stability_emu.requests[-1]
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.form == {
        "prompt": "a lighthouse",
        "negative_prompt": "fog",
        "aspect_ratio": "16:9",
        "seed": "5",
        "output_format": "webp",
        "style_preset": "cinematic",
    }
    assert sent.files == {}
    (image,) = result.images
    assert (image.mime_type, image.width, image.height, image.seed) == ("image/webp", 1344, 768, 5)


async def test_sd3_5_sends_model_and_cfg_scale(stability: StabilityAdapter, stability_emu: StabilityEmulator) -> None:
    request = ImageRequest(prompt="x", model="sd3.5-large", cfg_scale=4.5, aspect_ratio="2:3")
    await stability.generate(request, stability_target(stability_emu))
    sent = stability_emu.requests[-1]
    assert sent.path == "/v2beta/stable-image/generate/sd3"
    assert sent.form == {"prompt": "x", "aspect_ratio": "2:3", "model": "sd3.5-large", "cfg_scale": "4.5"}


async def test_ultra_n_fans_out_one_call_per_image(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    result = await stability.generate(ImageRequest(prompt="x", model="ultra", n=3), stability_target(stability_emu))
    assert len(result.images) == 3
    assert len(stability_emu.requests) == 3
    assert len((result.provider_request_id or "").split(",")) == 3


async def test_fan_out_with_one_failure_raises_its_classified_error(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    stability_emu.inject(Fault.status(500))
    error = await expect_error(stability.generate(ImageRequest(prompt="x", n=3), stability_target(stability_emu)))
    assert (error.kind, error.status_code) == (ErrorKind.UNAVAILABLE, 500)


@pytest.mark.parametrize("model", ["stable-diffusion-v1-6", "core", "sd3.5-medium"])
async def test_content_filtered_image_is_never_returned(
    stability: StabilityAdapter, stability_emu: StabilityEmulator, model: str
) -> None:
    stability_emu.inject(Fault.content_filter())
    error = await expect_error(
        stability.generate(ImageRequest(prompt="x", model=model), stability_target(stability_emu))
    )
    assert (error.kind, error.status_code, error.code) == (
        ErrorKind.CONTENT_POLICY,
        400,
        "content_policy_violation",
    )


async def test_moderation_denial_is_content_policy(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    stability_emu.inject(Fault.moderation_denied())
    error = await expect_error(stability.generate(ImageRequest(prompt="x"), stability_target(stability_emu)))
    assert (error.kind, error.status_code) == (ErrorKind.CONTENT_POLICY, 403)


@pytest.mark.parametrize(("retry_after", "expected"), [(None, 60.0), (2, 2.0)])
async def test_stability_rate_limit_waits(
    stability: StabilityAdapter, stability_emu: StabilityEmulator, retry_after: float | None, expected: float
) -> None:
    stability_emu.inject(Fault.rate_limited(retry_after=retry_after))
    error = await expect_error(stability.generate(ImageRequest(prompt="x"), stability_target(stability_emu)))
    assert (error.kind, error.status_code, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, expected)


async def test_wrong_stability_key_is_authentication_and_never_echoed(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    wrong = "sk-wrong-stability-key-zyxwvu-5555"
    for model in ("stable-diffusion-v1-6", "core"):
        error = await expect_error(
            stability.generate(ImageRequest(prompt="x", model=model), stability_target(stability_emu, key=wrong))
        )
        assert (error.kind, error.status_code) == (ErrorKind.AUTHENTICATION, 401)
        assert wrong not in error.message and "5555" not in error.message


@pytest.mark.parametrize("model", ["stable-diffusion-v1-6", "core"])
@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        (Fault.status(503), ErrorKind.UNAVAILABLE, 503),
        (Fault.status(404), ErrorKind.NOT_FOUND, 404),
        (Fault.status(413), ErrorKind.BAD_REQUEST, 413),
        (Fault.status(502, "<html>bad gateway</html>"), ErrorKind.UNAVAILABLE, 502),
        (Fault.reset(), ErrorKind.UNAVAILABLE, 502),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG, 502),
        (Fault.truncated(), ErrorKind.UNAVAILABLE, 502),
        (Fault.empty(), ErrorKind.UPSTREAM_BUG, 502),
    ],
)
async def test_stability_faults_are_classified(
    stability: StabilityAdapter,
    stability_emu: StabilityEmulator,
    model: str,
    fault: Fault,
    kind: ErrorKind,
    status: int,
) -> None:
    stability_emu.inject(fault)
    error = await expect_error(
        stability.generate(ImageRequest(prompt="x", model=model), stability_target(stability_emu))
    )
    assert (error.kind, error.status_code) == (kind, status)
    assert error.provider == "stability-ai"


async def test_stability_hang_times_out_as_408(stability: StabilityAdapter, stability_emu: StabilityEmulator) -> None:
    stability_emu.inject(Fault.hang())
    error = await expect_error(
        stability.generate(ImageRequest(prompt="x"), stability_target(stability_emu, timeout=0.3))
    )
    assert (error.kind, error.status_code) == (ErrorKind.TIMEOUT, 408)


async def test_stability_size_refused_in_strict_mode_never_reaches_upstream(
    stability: StabilityAdapter, stability_emu: StabilityEmulator
) -> None:
    error = await expect_error(
        stability.generate(
            ImageRequest(prompt="x", model="stable-diffusion-xl-1024-v1-0", size="512x512"),
            dataclasses.replace(stability_target(stability_emu), strict=True),
        )
    )
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "size")
    assert stability_emu.requests == []
