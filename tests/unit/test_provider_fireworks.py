"""The Fireworks AI adapter over real sockets: FLUX workflows, raw image answers, safety checker, errors.

The Fireworks emulator validates as Fireworks does (the eleven aspect ratios, steps per model, extra
fields a FastAPI 422) and answers the raw image with ``finish-reason`` and ``seed`` headers.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from types import MappingProxyType

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.fireworks.adapter import FireworksAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import canonical_provider
from tests.adapter_failures import generate_fails
from tests.credentials import api_key
from tests.emulators import Fault, FireworksEmulator
from tests.model_host_emulators import FIREWORKS_SECRET, Hosts, host_emulators, hosts

__all__ = ["host_emulators", "hosts"]

TARGET = UpstreamTarget(credential=api_key(FIREWORKS_SECRET, "fireworks-ai"))
PATH = "/inference/v1/workflows/accounts/fireworks/models/{}/text_to_image"


@pytest.fixture
def emu(hosts: Hosts) -> FireworksEmulator:
    return hosts.fireworks


@pytest.fixture
async def fireworks(emu: FireworksEmulator) -> AsyncIterator[FireworksAdapter]:
    adapter = FireworksAdapter(base_url=emu.base_url)
    yield adapter
    await adapter.aclose()


async def fails(adapter: FireworksAdapter, request: ImageRequest, target: UpstreamTarget = TARGET) -> ProviderError:
    return await generate_fails(adapter, request, target)


def test_portkeys_spelling_resolves() -> None:
    assert {canonical_provider(n) for n in ("fireworks-ai", "fireworks")} == {"fireworks-ai"}


async def test_size_becomes_an_aspect_ratio_and_the_raw_image_is_read(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    request = ImageRequest(prompt="a fox", model="flux-1-dev-fp8", size="1792x1024", seed=5, quality="high")
    result = await fireworks.generate(request, TARGET)
    sent = emu.requests[-1]
    assert sent.path == PATH.format("flux-1-dev-fp8")
    assert sent.headers["authorization"] == f"Bearer {FIREWORKS_SECRET}" and sent.headers["accept"] == "image/png"
    assert sent.json == {"prompt": "a fox", "aspect_ratio": "16:9", "seed": 5, "num_inference_steps": 50}
    assert result.translations == ("size=1792x1024->16:9", "quality=high->num_inference_steps=50")
    (image,) = result.images
    assert image.data is not None and image.mime_type == "image/png" and image.seed == 5
    assert (image.provider, image.model) == ("fireworks-ai", "flux-1-dev-fp8")
    assert image.size == f"{image.width}x{image.height}" and image.width > image.height


async def test_n_fans_out_with_stepped_seeds_and_jpeg_is_asked_by_accept(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    request = ImageRequest(prompt="a fox", n=3, seed=10, output_format="jpeg", cfg_scale=3.0)
    result = await fireworks.generate(request, TARGET)
    assert len(result.images) == 3 and len(emu.requests) == 3
    assert sorted(r.json["seed"] for r in emu.requests if r.json) == [10, 11, 12]
    assert all(r.headers["accept"] == "image/jpeg" and r.json and r.json["guidance_scale"] == 3.0 for r in emu.requests)
    assert all(image.mime_type == "image/jpeg" for image in result.images)
    assert result.translations == ("n=3->3x1",)


async def test_the_account_prefix_is_accepted(fireworks: FireworksAdapter, emu: FireworksEmulator) -> None:
    model = "accounts/fireworks/models/flux-1-schnell-fp8"
    result = await fireworks.generate(ImageRequest(prompt="a fox", model=model), TARGET)
    assert emu.requests[-1].path == PATH.format("flux-1-schnell-fp8") and result.model == model


async def test_a_url_request_is_answered_with_bytes_as_stability_does(fireworks: FireworksAdapter) -> None:
    result = await fireworks.generate(ImageRequest(prompt="a fox", response_format=ResponseFormat.URL), TARGET)
    assert result.images[0].data is not None and result.images[0].url is None


async def test_the_safety_checker_is_a_content_policy_failure_never_served(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    emu.inject(Fault.content_filter())
    error = await fails(fireworks, ImageRequest(prompt="x"))
    assert (error.kind, error.code) == (ErrorKind.CONTENT_POLICY, "content_policy_violation")


async def test_a_json_answer_with_data_uris_is_read(fireworks: FireworksAdapter, emu: FireworksEmulator) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGNgYGAAAAAEAAH2FzhVAAAAAElFTkSuQmCC"
    )
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    emu.inject(Fault.status(200, {"id": "1", "base64": [uri], "finishReason": "SUCCESS", "seed": 3}))
    result = await fireworks.generate(ImageRequest(prompt="x"), TARGET)
    assert result.images[0].data == png and result.images[0].seed == 3
    emu.inject(Fault.status(200, {"id": "1", "base64": [uri], "finishReason": "CONTENT_FILTERED", "seed": 3}))
    assert (await fails(fireworks, ImageRequest(prompt="x"))).kind is ErrorKind.CONTENT_POLICY


async def test_a_model_it_does_not_serve_is_refused_naming_model(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    error = await fails(fireworks, ImageRequest(prompt="x", model="stable-diffusion-xl-1024-v1-0"))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "model") and "not a Fireworks FLUX" in error.message
    assert emu.requests == []


# -- FLUX Kontext: a task submitted, polled and fetched -------------------------------------------


KONTEXT = "flux-kontext-pro"
KONTEXT_PATH = "/inference/v1/workflows/accounts/fireworks/models/flux-kontext-pro"


async def test_kontext_is_submitted_polled_and_fetched_into_bytes(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    emu.kontext_pending_polls = 2
    request = ImageRequest(
        prompt="a fox",
        model=KONTEXT,
        size="1792x1024",
        seed=4,
        output_format="jpeg",
        extra=MappingProxyType({"safety_tolerance": 2}),
    )
    result = await fireworks.generate(request, TARGET)
    submit, *polls = emu.requests
    assert submit.path == KONTEXT_PATH
    assert submit.json == {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "seed": 4,
        "output_format": "jpeg",
        "safety_tolerance": 2,
    }
    assert [p.path for p in polls] == [KONTEXT_PATH + "/get_result"] * 3
    assert all(p.json == {"id": result.provider_request_id} for p in polls)
    assert all(p.headers["authorization"] == f"Bearer {FIREWORKS_SECRET}" for p in (submit, *polls))
    (image,) = result.images
    assert image.data is not None and image.mime_type == "image/jpeg" and image.width > image.height
    assert (image.provider, image.model) == ("fireworks-ai", KONTEXT)


async def test_kontext_moderation_is_a_content_policy_failure(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    emu.inject(Fault.content_filter())  # taken by the submit: the task ends moderated
    error = await fails(fireworks, ImageRequest(prompt="x", model=KONTEXT))
    assert (error.kind, error.code) == (ErrorKind.CONTENT_POLICY, "content_policy_violation")


async def test_a_kontext_task_that_never_finishes_ends_at_the_attempts_deadline(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    emu.kontext_pending_polls = None
    target = UpstreamTarget(credential=TARGET.credential, timeout=1.5)
    error = await fails(fireworks, ImageRequest(prompt="x", model=KONTEXT), target)
    assert (error.kind, error.status_code) == (ErrorKind.TIMEOUT, 408)
    polls = len(emu.requests) - 1
    assert 1 <= polls <= 4  # 0.5 s, then 0.75 s, ...: a bounded few, never a tight loop


async def test_a_poll_answered_503_is_tried_again(fireworks: FireworksAdapter, emu: FireworksEmulator) -> None:
    emu.kontext_pending_polls = 0
    emu.inject(Fault.latency(0))  # the submit answers normally
    emu.inject(Fault.status(503))  # the first poll fails; the task still runs
    result = await fireworks.generate(ImageRequest(prompt="x", model=KONTEXT), TARGET)
    assert len(result.images) == 1
    assert [r.path.rsplit("/", 1)[-1] for r in emu.requests] == ["flux-kontext-pro", "get_result", "get_result"]


async def test_a_failed_kontext_task_is_unavailable(fireworks: FireworksAdapter, emu: FireworksEmulator) -> None:
    emu.kontext_final_status = "Error"
    error = await fails(fireworks, ImageRequest(prompt="x", model=KONTEXT))
    assert (error.kind, error.code) == (ErrorKind.UNAVAILABLE, "generation_failed")


async def test_a_result_url_elsewhere_is_refused_unfetched(fireworks: FireworksAdapter, emu: FireworksEmulator) -> None:
    emu.kontext_sample_origin = "http://169.254.169.254"
    error = await fails(fireworks, ImageRequest(prompt="x", model=KONTEXT))
    assert error.kind is ErrorKind.UPSTREAM_BUG and "not fetched" in error.message


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", model=KONTEXT, cfg_scale=3.0), "cfg_scale"),
        (ImageRequest(prompt="x", model=KONTEXT, extra=MappingProxyType({"safety_tolerance": 9})), "safety_tolerance"),
        (ImageRequest(prompt="x", model=KONTEXT, quality="hd"), "quality"),
    ],
)
async def test_what_kontext_cannot_take_is_refused_before_any_call(
    fireworks: FireworksAdapter, emu: FireworksEmulator, request_: ImageRequest, param: str
) -> None:
    error = await fails(fireworks, request_)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", negative_prompt="blur"), "negative_prompt"),
        (ImageRequest(prompt="x", style="vivid"), "style"),
        (ImageRequest(prompt="x", aspect_ratio="7:3"), "aspect_ratio"),
        (ImageRequest(prompt="x", output_format="webp"), "output_format"),
    ],
)
async def test_what_fireworks_cannot_take_is_refused_before_any_call(
    fireworks: FireworksAdapter, emu: FireworksEmulator, request_: ImageRequest, param: str
) -> None:
    error = await fails(fireworks, request_)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (
            {"fault": {"faultstring": "Invalid ApiKey", "detail": {"errorcode": "oauth.v2.InvalidApiKey"}}},
            ErrorKind.AUTHENTICATION,
            "Invalid ApiKey",
        ),
        (
            {"detail": [{"loc": ["body", "x"], "msg": "Extra inputs are not permitted"}]},
            ErrorKind.BAD_REQUEST,
            "x: Extra inputs",
        ),
        ({"error": {"message": "The API key you provided is invalid."}}, ErrorKind.AUTHENTICATION, "invalid"),
    ],
)
async def test_the_three_error_shapes_are_read(
    fireworks: FireworksAdapter, emu: FireworksEmulator, body: dict[str, object], kind: ErrorKind, words: str
) -> None:
    status = 422 if "detail" in body else 401
    emu.inject(Fault.status(status, body))
    error = await fails(fireworks, ImageRequest(prompt="x"))
    assert error.kind is kind and words in error.message


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.rate_limited(), ErrorKind.RATE_LIMITED),
        (Fault.status(503), ErrorKind.UNAVAILABLE),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG),
        (Fault.status(402, {"error": {"message": "out of credits"}}), ErrorKind.PERMISSION_DENIED),
    ],
)
async def test_faults_are_classified(
    fireworks: FireworksAdapter, emu: FireworksEmulator, fault: Fault, kind: ErrorKind
) -> None:
    emu.inject(fault)
    assert (await fails(fireworks, ImageRequest(prompt="x"))).kind is kind


async def test_a_wrong_key_is_authentication_and_never_echoed(fireworks: FireworksAdapter) -> None:
    wrong = "fw_wrong_key_9876543210abcdef"
    error = await fails(fireworks, ImageRequest(prompt="x"), UpstreamTarget(credential=api_key(wrong, "fireworks-ai")))
    assert error.kind is ErrorKind.AUTHENTICATION and wrong not in error.message
