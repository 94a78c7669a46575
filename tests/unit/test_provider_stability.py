"""The Stability AI adapter over real sockets: routing, v1 JSON, v2beta forms, filters, errors.

The Stability emulator (tests/emulators) records what the adapter sent, parses its multipart forms
and answers either for real or with the exact body a case needs (``Fault.status``); a
``RawUpstream`` stands in where a case needs to watch calls arrive together.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.stability.adapter import StabilityAdapter
from imagegateway_server.providers.stability.models import SDXL_SIZES
from tests.conftest import STABILITY_SECRET, Emulators
from tests.credentials import api_key
from tests.emulators import Fault, RecordedRequest, StabilityEmulator
from tests.raw_http import HANG, Outcome, RawRequest, RawUpstream, http_response

KEY = STABILITY_SECRET  # what the session's emulator accepts
TARGET = UpstreamTarget(credential=api_key(KEY))


def png(width: int = 4, height: int = 3) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = png()
PNG_B64 = base64.b64encode(PNG).decode()


def v1_ok(*artifacts: dict[str, Any]) -> Fault:
    body = {"artifacts": list(artifacts) or [{"base64": PNG_B64, "seed": 1050625087, "finishReason": "SUCCESS"}]}
    return Fault.status(200, body, headers={"x-request-id": "v1-req"})


def v2_body(seed: int = 343940597, finish: str = "SUCCESS", image: str = PNG_B64) -> bytes:
    return json.dumps({"image": image, "finish_reason": finish, "seed": seed}).encode()


V2_HEADERS = {"content-type": "application/json; type=image/png"}


def v2_ok(seed: int = 343940597, finish: str = "SUCCESS", image: str = PNG_B64) -> Fault:
    return Fault.status(200, v2_body(seed, finish, image), headers={**V2_HEADERS, "x-request-id": f"v2-{seed}"})


def v1_error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Fault:
    return Fault.status(status, {"id": "4f1c", "name": name, "message": message}, headers=headers)


def v2_error(status: int, name: str, *errors: str, headers: dict[str, str] | None = None) -> Fault:
    return Fault.status(status, {"id": "a" * 32, "name": name, "errors": list(errors)}, headers=headers)


def raw(status: int, body: str | bytes, headers: dict[str, str] | None = None) -> Fault:
    """An answer with exactly this (non-JSON, image or empty) body."""
    return Fault.status(status, body, headers=headers)


def parts(content_type: str, body: bytes) -> list[tuple[str, str, str | None]]:
    """(name, value, filename) of each multipart part, in order, parsed independently of the emulator."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.message_from_bytes(head + body, policy=email.policy.HTTP)
    assert message.is_multipart()
    found = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found.append((str(part.get_param("name", header="content-disposition")), payload.decode(), part.get_filename()))
    return found


def form_fields(request: RecordedRequest) -> list[tuple[str, str, str | None]]:
    return parts(request.headers["content-type"], request.body)


def form(request: RecordedRequest) -> dict[str, str]:
    return {name: value for name, value, _ in form_fields(request)}


@pytest.fixture
def emu(emulators: Emulators) -> StabilityEmulator:
    return emulators.stability


MakeFn = Callable[..., StabilityAdapter]


@pytest.fixture
async def make(emu: StabilityEmulator) -> AsyncIterator[MakeFn]:
    """Makes adapters pointed at the emulator that answer every request with ``answer`` (if given)."""
    adapters: list[StabilityAdapter] = []

    def factory(answer: Fault | None = None, **kwargs: Any) -> StabilityAdapter:
        if answer is not None:
            emu.inject(answer, times=None)
        adapter = StabilityAdapter(base_url=kwargs.pop("base_url", emu.base_url), **kwargs)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


# -- v1 --------------------------------------------------------------------------------------------


async def test_v1_6_request_maps_prompts_size_samples_seed_cfg_and_preset(make: MakeFn, emu: StabilityEmulator) -> None:
    adapter = make(v1_ok(*[{"base64": PNG_B64, "seed": s, "finishReason": "SUCCESS"} for s in (7, 8)]))
    request = ImageRequest(
        prompt="a lighthouse",
        model="stable-diffusion-v1-6",
        n=2,
        size="768x512",
        negative_prompt="blurry",
        seed=7,
        cfg_scale=9.5,
        style_preset="photographic",
        user="end-user-1",
    )
    result = await adapter.generate(request, TARGET)
    sent = emu.requests[-1]
    assert sent.path == "/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["stability-client-user-id"] == "end-user-1"
    assert emu.requests[-1].json == {
        "text_prompts": [{"text": "a lighthouse", "weight": 1}, {"text": "blurry", "weight": -1}],
        "width": 768,
        "height": 512,
        "samples": 2,
        "seed": 7,
        "cfg_scale": 9.5,
        "style_preset": "photographic",
    }
    assert [image.seed for image in result.images] == [7, 8]
    assert (result.images[0].mime_type, result.images[0].width, result.images[0].height) == (
        "image/png",
        4,
        3,
    )
    assert result.provider_request_id == "v1-req"
    assert result.model == "stable-diffusion-v1-6"


@pytest.mark.parametrize(
    ("model", "size", "width", "height"),
    [
        ("stable-diffusion-v1-6", None, 512, 512),
        ("stable-diffusion-xl-1024-v1-0", None, 1024, 1024),
        ("stable-diffusion-xl-1024-v1-0", "1344x768", 1344, 768),
        ("stable-diffusion-v1-6", "1536x320", 1536, 320),
    ],
)
async def test_v1_sizes(
    make: MakeFn, emu: StabilityEmulator, model: str, size: str | None, width: int, height: int
) -> None:
    adapter = make(v1_ok())
    await adapter.generate(ImageRequest(prompt="x", model=model, size=size), TARGET)
    assert (emu.requests[-1].json["width"], emu.requests[-1].json["height"]) == (width, height)
    assert emu.requests[-1].json["text_prompts"] == [{"text": "x", "weight": 1}]


@pytest.mark.parametrize(
    ("model", "size", "words"),
    [
        ("stable-diffusion-v1-6", "1000x1000", "multiple of 64"),
        ("stable-diffusion-v1-6", "256x256", "320 to 1536"),
        ("stable-diffusion-v1-6", "2048x512", "320 to 1536"),
        ("stable-diffusion-xl-1024-v1-0", "512x512", "1152x896"),
        ("stable-diffusion-xl-1024-v1-0", "1792x1024", "strict mode"),
        ("stable-diffusion-xl-1024-v1-0", "big", "1024x1024"),
    ],
)
async def test_v1_sizes_the_engine_cannot_make_are_refused_in_strict_mode(
    make: MakeFn, emu: StabilityEmulator, model: str, size: str, words: str
) -> None:
    adapter = make(v1_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(
            ImageRequest(prompt="x", model=model, size=size), UpstreamTarget(credential=api_key(KEY), strict=True)
        )
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "size")
    assert words in info.value.message
    assert emu.requests == []


async def test_v1_documented_extras_are_forwarded(make: MakeFn, emu: StabilityEmulator) -> None:
    adapter = make(v1_ok())
    extra = {"steps": 40, "sampler": "K_EULER", "clip_guidance_preset": "FAST_BLUE"}
    await adapter.generate(ImageRequest(prompt="x", model="stable-diffusion-v1-6", extra=extra), TARGET)
    assert {k: emu.requests[-1].json[k] for k in extra} == extra


# -- v2beta ----------------------------------------------------------------------------------------


async def test_core_is_the_default_and_posts_multipart_without_files(make: MakeFn, emu: StabilityEmulator) -> None:
    adapter = make(v2_ok())
    assert adapter.default_model() == "core"
    request = ImageRequest(
        prompt="a lighthouse",
        size="1792x1024",
        negative_prompt="blurry",
        seed=42,
        output_format="webp",
        style_preset="cinematic",
    )
    result = await adapter.generate(request, TARGET)
    sent = emu.requests[-1]
    assert sent.path == "/v2beta/stable-image/generate/core"
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert sent.headers["accept"] == "application/json"
    assert form_fields(sent) == [
        ("prompt", "a lighthouse", None),
        ("negative_prompt", "blurry", None),
        ("aspect_ratio", "16:9", None),
        ("seed", "42", None),
        ("output_format", "webp", None),
        ("style_preset", "cinematic", None),
    ]
    image = result.images[0]
    assert (image.data, image.seed, image.mime_type) == (PNG, 343940597, "image/png")
    assert result.model == "core"
    assert result.provider_request_id == "v2-343940597"


@pytest.mark.parametrize(
    ("model", "endpoint", "sd3_model"),
    [
        ("stable-image-core", "core", None),
        ("ultra", "ultra", None),
        ("stable-image-ultra", "ultra", None),
        ("sd3", "sd3", None),
        ("sd3.5-large", "sd3", "sd3.5-large"),
        ("sd3.5-large-turbo", "sd3", "sd3.5-large-turbo"),
        ("sd3-medium", "sd3", "sd3-medium"),
    ],
)
async def test_v2beta_routing(
    make: MakeFn, emu: StabilityEmulator, model: str, endpoint: str, sd3_model: str | None
) -> None:
    adapter = make(v2_ok())
    await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    assert emu.requests[-1].path == f"/v2beta/stable-image/generate/{endpoint}"
    assert form(emu.requests[-1]).get("model") == sd3_model


async def test_sd3_takes_cfg_scale_and_model(make: MakeFn, emu: StabilityEmulator) -> None:
    adapter = make(v2_ok())
    await adapter.generate(ImageRequest(prompt="x", model="sd3.5-medium", cfg_scale=4.0, aspect_ratio="9:21"), TARGET)
    assert form(emu.requests[-1]) == {
        "prompt": "x",
        "aspect_ratio": "9:21",
        "model": "sd3.5-medium",
        "cfg_scale": "4",
    }


async def generate_from(upstream: RawUpstream, request: ImageRequest) -> Any:
    adapter = StabilityAdapter(base_url=upstream.url(""))
    try:
        return await adapter.generate(request, UpstreamTarget(credential=api_key(KEY), timeout=30))
    finally:
        await adapter.aclose()


async def test_n_fans_out_concurrently_with_stepped_seeds() -> None:
    arrived = 0
    all_three = asyncio.Event()

    async def answer(request: RawRequest) -> bytes:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_three.set()
        await all_three.wait()  # no call is answered before all three are in flight
        seed = int(dict((n, v) for n, v, _ in parts(request.headers["content-type"], request.body))["seed"])
        return http_response(200, v2_body(seed=seed), {**V2_HEADERS, "x-request-id": f"v2-{seed}"})

    async with RawUpstream(answer) as upstream:
        result = await generate_from(upstream, ImageRequest(prompt="x", model="core", n=3, seed=10))
    assert len(upstream.requests) == 3
    assert sorted(image.seed or 0 for image in result.images) == [10, 11, 12]
    assert set((result.provider_request_id or "").split(",")) == {"v2-10", "v2-11", "v2-12"}


async def test_fan_out_failure_cancels_the_rest_and_raises_the_classified_error() -> None:
    arrived = 0
    all_three = asyncio.Event()
    failure = json.dumps(
        {"id": "a" * 32, "name": "internal_error", "errors": ["An unexpected server error has occurred."]}
    ).encode()

    async def answer(request: RawRequest) -> Outcome:
        nonlocal arrived
        arrived += 1
        if arrived == 3:
            all_three.set()
        if arrived != 2:
            return HANG  # answered never: the client must give these calls up
        await all_three.wait()
        return http_response(500, failure, {"content-type": "application/json"})

    async with RawUpstream(answer) as upstream:
        with pytest.raises(ProviderError) as info:
            await generate_from(upstream, ImageRequest(prompt="x", n=3))
        async with asyncio.timeout(10):
            await upstream.wait_abandoned(2)  # the two waiting calls were cancelled: their connections closed
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UNAVAILABLE, 500)


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("1792x1024", "16:9"),
        ("1024x1792", "9:16"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1280x1024", "5:4"),
        ("2520x1080", "21:9"),
        ("1000x1100", "1:1"),
    ],
)
async def test_size_becomes_the_nearest_aspect_ratio(
    make: MakeFn, emu: StabilityEmulator, size: str, ratio: str
) -> None:
    adapter = make(v2_ok())
    await adapter.generate(ImageRequest(prompt="x", model="ultra", size=size), TARGET)
    assert form(emu.requests[-1])["aspect_ratio"] == ratio


async def test_size_conflicting_with_aspect_ratio_is_refused(make: MakeFn, emu: StabilityEmulator) -> None:
    adapter = make(v2_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", size="1024x1024", aspect_ratio="16:9"), TARGET)
    assert info.value.param == "size"
    assert emu.requests == []


# -- refused parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        ("core", {"quality": "hd"}, "quality"),
        ("core", {"style": "vivid"}, "style"),
        ("ultra", {"background": "transparent"}, "background"),
        ("core", {"output_compression": 80}, "output_compression"),
        ("sd3", {"moderation": "low"}, "moderation"),
        ("core", {"cfg_scale": 7.0}, "cfg_scale"),
        ("core", {"extra": {"steps": 30}}, "steps"),
        ("core", {"aspect_ratio": "7:3"}, "aspect_ratio"),
        ("stable-diffusion-v1-6", {"aspect_ratio": "16:9"}, "aspect_ratio"),
        ("stable-diffusion-v1-6", {"output_format": "jpeg"}, "output_format"),
        ("stable-diffusion-xl-1024-v1-0", {"extra": {"mystery": 1}}, "mystery"),
        ("dall-e-3", {}, "model"),
        ("core", {"user": "u" * 257}, "user"),
    ],
)
async def test_parameters_stability_does_not_take_are_refused_before_any_call(
    make: MakeFn, emu: StabilityEmulator, model: str, fields: dict[str, Any], param: str
) -> None:
    adapter = make(v2_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model, **fields), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.param, error.provider) == (
        ErrorKind.BAD_REQUEST,
        400,
        param,
        "stability-ai",
    )
    assert param in error.message
    assert emu.requests == []


# -- content filter --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "response"),
    [
        ("stable-diffusion-v1-6", v1_ok({"base64": PNG_B64, "seed": 1, "finishReason": "CONTENT_FILTERED"})),
        (
            "stable-diffusion-v1-6",
            v1_ok(
                {"base64": PNG_B64, "seed": 1, "finishReason": "SUCCESS"},
                {"base64": PNG_B64, "seed": 2, "finishReason": "CONTENT_FILTERED"},
            ),
        ),
        ("stable-diffusion-xl-1024-v1-0", v1_ok({"base64": PNG_B64, "seed": 1, "finishReason": "ERROR"})),
        ("core", v2_ok(finish="CONTENT_FILTERED")),
        (
            "ultra",
            raw(200, PNG, headers={"content-type": "image/png", "finish-reason": "CONTENT_FILTERED"}),
        ),
    ],
)
async def test_content_filtered_images_are_content_policy_failures(make: MakeFn, model: str, response: Fault) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model, n=2 if model.startswith("stable") else 1), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.code) == (
        ErrorKind.CONTENT_POLICY,
        400,
        "content_policy_violation",
    )


async def test_raw_image_answer_is_accepted(make: MakeFn) -> None:
    adapter = make(raw(200, PNG, headers={"content-type": "image/png", "finish-reason": "SUCCESS", "seed": "99"}))
    result = await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert (result.images[0].data, result.images[0].seed) == (PNG, 99)


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "kind", "status", "code"),
    [
        (v2_error(400, "bad_request", "prompt: is required"), ErrorKind.BAD_REQUEST, 400, "bad_request"),
        (
            v1_error(400, "invalid_prompts", "Invalid prompts detected"),
            ErrorKind.CONTENT_POLICY,
            400,
            "content_policy_violation",
        ),
        (
            v1_error(401, "unauthorized", "missing authorization header"),
            ErrorKind.AUTHENTICATION,
            401,
            "unauthorized",
        ),
        (v2_error(401, "unauthorized", "invalid key"), ErrorKind.AUTHENTICATION, 401, "unauthorized"),
        (
            v2_error(403, "content_moderation", "Your request was flagged by our content moderation system."),
            ErrorKind.CONTENT_POLICY,
            403,
            "content_policy_violation",
        ),
        (
            v1_error(403, "permission_denied", "You do not have permission"),
            ErrorKind.PERMISSION_DENIED,
            403,
            "permission_denied",
        ),
        (
            v1_error(404, "not_found", "The specified engine (ID x) was not found."),
            ErrorKind.NOT_FOUND,
            404,
            "not_found",
        ),
        (
            v2_error(413, "payload_too_large", "body: payloads cannot be larger than 10MiB in size"),
            ErrorKind.BAD_REQUEST,
            413,
            "payload_too_large",
        ),
        (
            v2_error(422, "invalid_language", "English is the only supported language."),
            ErrorKind.BAD_REQUEST,
            422,
            "invalid_language",
        ),
        (
            v2_error(429, "rate_limit_exceeded", "You have exceeded the rate limit"),
            ErrorKind.RATE_LIMITED,
            429,
            "rate_limit_exceeded",
        ),
        (
            v2_error(500, "internal_error", "An unexpected server error has occurred"),
            ErrorKind.UNAVAILABLE,
            500,
            "internal_error",
        ),
        (v1_error(503, "server_error", "overloaded"), ErrorKind.UNAVAILABLE, 503, "server_error"),
        (raw(502, "<html>bad gateway</html>"), ErrorKind.UNAVAILABLE, 502, None),
        (raw(500, b""), ErrorKind.UNAVAILABLE, 500, None),
    ],
)
@pytest.mark.parametrize("model", ["stable-diffusion-v1-6", "core"])
async def test_error_statuses_are_classified(
    make: MakeFn, model: str, response: Fault, kind: ErrorKind, status: int, code: str | None
) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.code) == (kind, status, code)
    assert error.message.startswith("stability-ai")


async def test_upstream_error_text_is_kept(make: MakeFn) -> None:
    adapter = make(v2_error(400, "bad_request", "aspect_ratio: must be one of", "seed: too big"))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert "aspect_ratio: must be one of; seed: too big" in info.value.message


@pytest.mark.parametrize(
    ("headers", "retry_after"), [({}, 60.0), ({"retry-after": "5"}, 5.0), ({"retry-after-ms": "1500"}, 1.5)]
)
async def test_rate_limit_waits_60_s_unless_told_otherwise(
    make: MakeFn, headers: dict[str, str], retry_after: float
) -> None:
    adapter = make(v2_error(429, "rate_limit_exceeded", "timed out for 60 seconds", headers=headers))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("model", "response", "words"),
    [
        ("stable-diffusion-v1-6", raw(200, "<html/>"), "non-JSON"),
        ("stable-diffusion-v1-6", raw(200, b""), "empty body"),
        ("stable-diffusion-v1-6", Fault.status(200, {"artifacts": []}), "without images"),
        ("stable-diffusion-v1-6", Fault.status(200, {"artifacts": [{"base64": "%%%"}]}), "base64"),
        ("core", Fault.status(200, {"finish_reason": "SUCCESS"}), "empty or not a string"),
        ("core", v2_ok(image=base64.b64encode(b"not an image").decode()), "not an image"),
        ("core", v2_ok(finish="SOMETHING_NEW"), "unknown finish reason"),
        ("core", raw(200, b""), "empty body"),
    ],
)
async def test_broken_success_bodies_are_upstream_bugs(make: MakeFn, model: str, response: Fault, words: str) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UPSTREAM_BUG, 502)
    assert words in info.value.message


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listening, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("failure", "kind", "status", "words"),
    [
        (Fault.hang(), ErrorKind.TIMEOUT, 408, ""),
        (None, ErrorKind.UNAVAILABLE, 502, "refused"),
        (Fault.reset(), ErrorKind.UNAVAILABLE, 502, "reset"),
        (Fault.truncated(), ErrorKind.UNAVAILABLE, 502, "truncated"),
    ],
)
async def test_network_failures_are_classified(
    make: MakeFn, failure: Fault | None, kind: ErrorKind, status: int, words: str
) -> None:
    adapter = make(failure) if failure is not None else make(base_url=f"http://127.0.0.1:{closed_port()}")
    timeout = 0.3 if kind is ErrorKind.TIMEOUT else 10
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", n=2), UpstreamTarget(credential=api_key(KEY), timeout=timeout))
    assert (info.value.kind, info.value.status_code) == (kind, status)
    assert words in info.value.message


@pytest.mark.parametrize(
    "response",
    [
        v1_error(401, "unauthorized", f"invalid key {KEY}"),
        v2_error(400, "bad_request", f"Bearer {KEY} is malformed"),
        raw(503, f"upstream says {KEY}"),
        raw(200, f"broken {KEY}"),
    ],
)
async def test_api_key_never_appears_in_error_messages(make: MakeFn, response: Fault) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert KEY not in info.value.message
    assert KEY not in str(info.value)


def test_sdxl_allows_exactly_its_nine_sizes() -> None:
    assert len(SDXL_SIZES) == 9


@pytest.mark.parametrize("user", ["end\r\nuser", "us\u00e9r"])
async def test_user_that_cannot_be_a_header_is_refused(make: MakeFn, emu: StabilityEmulator, user: str) -> None:
    adapter = make(v2_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", user=user), TARGET)
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "user")
    assert emu.requests == []
