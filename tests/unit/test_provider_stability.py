"""The Stability AI adapter against httpx.MockTransport: routing, v1 JSON, v2beta forms, filters, errors."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import math
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.base import UpstreamTarget
from imagegateway_server.providers.stability import (
    ASPECT_RATIOS,
    SDXL_SIZES,
    StabilityAdapter,
    nearest_aspect_ratio,
)

KEY = "sk-stability-unit-secret-0123456789"
TARGET = UpstreamTarget(api_key=KEY)

Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


def png(width: int = 4, height: int = 3) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


PNG = png()
PNG_B64 = base64.b64encode(PNG).decode()


def v1_ok(*artifacts: dict[str, Any]) -> httpx.Response:
    body = {
        "artifacts": list(artifacts) or [{"base64": PNG_B64, "seed": 1050625087, "finishReason": "SUCCESS"}]
    }
    return httpx.Response(200, json=body, headers={"x-request-id": "v1-req"})


def v2_ok(seed: int = 343940597, finish: str = "SUCCESS", image: str = PNG_B64) -> httpx.Response:
    return httpx.Response(
        200,
        content=json.dumps({"image": image, "finish_reason": finish, "seed": seed}).encode(),
        headers={"content-type": "application/json; type=image/png", "x-request-id": f"v2-{seed}"},
    )


def v1_error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json={"id": "4f1c", "name": name, "message": message}, headers=headers)


def v2_error(status: int, name: str, *errors: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status, json={"id": "a" * 32, "name": name, "errors": list(errors)}, headers=headers
    )


def form_fields(request: httpx.Request) -> list[tuple[str, str, str | None]]:
    """(name, value, filename) of each multipart part, in order."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + request.content, policy=email.policy.HTTP)
    assert message.is_multipart()
    parts = []
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts.append(
            (str(part.get_param("name", header="content-disposition")), payload.decode(), part.get_filename())
        )
    return parts


class Upstream:
    """A MockTransport that records what the adapter sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        result = self.handler(request)
        if isinstance(result, httpx.Response):
            return result
        return await result

    @property
    def json(self) -> Any:
        return json.loads(self.requests[-1].content)

    def form(self, index: int = -1) -> dict[str, str]:
        return {name: value for name, value, _ in form_fields(self.requests[index])}


MakeFn = Callable[..., tuple[StabilityAdapter, Upstream]]


@pytest.fixture
async def make() -> AsyncIterator[MakeFn]:
    adapters: list[StabilityAdapter] = []

    def factory(handler: Handler, **kwargs: Any) -> tuple[StabilityAdapter, Upstream]:
        upstream = Upstream(handler)
        adapter = StabilityAdapter(transport=httpx.MockTransport(upstream), **kwargs)
        adapters.append(adapter)
        return adapter, upstream

    yield factory
    for adapter in adapters:
        await adapter.aclose()


# -- v1 --------------------------------------------------------------------------------------------


async def test_v1_6_request_maps_prompts_size_samples_seed_cfg_and_preset(make: MakeFn) -> None:
    adapter, upstream = make(
        lambda r: v1_ok(*[{"base64": PNG_B64, "seed": s, "finishReason": "SUCCESS"} for s in (7, 8)])
    )
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
    sent = upstream.requests[-1]
    assert str(sent.url) == "https://api.stability.ai/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["stability-client-user-id"] == "end-user-1"
    assert upstream.json == {
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
async def test_v1_sizes(make: MakeFn, model: str, size: str | None, width: int, height: int) -> None:
    adapter, upstream = make(lambda r: v1_ok())
    await adapter.generate(ImageRequest(prompt="x", model=model, size=size), TARGET)
    assert (upstream.json["width"], upstream.json["height"]) == (width, height)
    assert upstream.json["text_prompts"] == [{"text": "x", "weight": 1}]


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
    make: MakeFn, model: str, size: str, words: str
) -> None:
    adapter, upstream = make(lambda r: v1_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model, size=size),
                               UpstreamTarget(api_key=KEY, strict=True))
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "size")
    assert words in info.value.message
    assert upstream.requests == []


async def test_v1_documented_extras_are_forwarded(make: MakeFn) -> None:
    adapter, upstream = make(lambda r: v1_ok())
    extra = {"steps": 40, "sampler": "K_EULER", "clip_guidance_preset": "FAST_BLUE"}
    await adapter.generate(ImageRequest(prompt="x", model="stable-diffusion-v1-6", extra=extra), TARGET)
    assert {k: upstream.json[k] for k in extra} == extra


# -- v2beta ----------------------------------------------------------------------------------------


async def test_core_is_the_default_and_posts_multipart_without_files(make: MakeFn) -> None:
    adapter, upstream = make(lambda r: v2_ok())
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
    sent = upstream.requests[-1]
    assert str(sent.url) == "https://api.stability.ai/v2beta/stable-image/generate/core"
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
async def test_v2beta_routing(make: MakeFn, model: str, endpoint: str, sd3_model: str | None) -> None:
    adapter, upstream = make(lambda r: v2_ok())
    await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    assert upstream.requests[-1].url.path == f"/v2beta/stable-image/generate/{endpoint}"
    assert upstream.form().get("model") == sd3_model


async def test_sd3_takes_cfg_scale_and_model(make: MakeFn) -> None:
    adapter, upstream = make(lambda r: v2_ok())
    await adapter.generate(
        ImageRequest(prompt="x", model="sd3.5-medium", cfg_scale=4.0, aspect_ratio="9:21"), TARGET
    )
    assert upstream.form() == {
        "prompt": "x",
        "aspect_ratio": "9:21",
        "model": "sd3.5-medium",
        "cfg_scale": "4",
    }


async def test_n_fans_out_concurrently_with_stepped_seeds(make: MakeFn) -> None:
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        seed = int(dict((n, v) for n, v, _ in form_fields(request))["seed"])
        return v2_ok(seed=seed)

    adapter, upstream = make(handler)
    result = await adapter.generate(ImageRequest(prompt="x", model="core", n=3, seed=10), TARGET)
    assert len(upstream.requests) == 3
    assert peak == 3
    assert sorted(image.seed or 0 for image in result.images) == [10, 11, 12]
    assert set((result.provider_request_id or "").split(",")) == {"v2-10", "v2-11", "v2-12"}


async def test_fan_out_failure_cancels_the_rest_and_raises_the_classified_error(make: MakeFn) -> None:
    calls = 0
    cancelled = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls, cancelled
        calls += 1
        if calls == 2:
            return v2_error(500, "internal_error", "An unexpected server error has occurred.")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled += 1
            raise
        return v2_ok()

    adapter, _ = make(handler)
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(adapter.generate(ImageRequest(prompt="x", n=3), TARGET), timeout=5)
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UNAVAILABLE, 500)
    assert cancelled == 2


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
async def test_size_becomes_the_nearest_aspect_ratio(make: MakeFn, size: str, ratio: str) -> None:
    adapter, upstream = make(lambda r: v2_ok())
    await adapter.generate(ImageRequest(prompt="x", model="ultra", size=size), TARGET)
    assert upstream.form()["aspect_ratio"] == ratio


@given(st.integers(min_value=1, max_value=8192), st.integers(min_value=1, max_value=8192))
def test_nearest_aspect_ratio_is_allowed_and_no_other_is_closer(width: int, height: int) -> None:
    ratio = nearest_aspect_ratio(width, height)
    assert ratio in ASPECT_RATIOS

    def distance(r: str) -> float:
        w, h = r.split(":")
        return abs(math.log(int(w) / int(h)) - math.log(width / height))

    assert all(distance(ratio) <= distance(other) for other in ASPECT_RATIOS)


@given(st.sampled_from(ASPECT_RATIOS), st.integers(min_value=1, max_value=100))
def test_an_exact_aspect_ratio_maps_to_itself(ratio: str, scale: int) -> None:
    w, h = ratio.split(":")
    assert nearest_aspect_ratio(int(w) * scale, int(h) * scale) == ratio


async def test_size_conflicting_with_aspect_ratio_is_refused(make: MakeFn) -> None:
    adapter, upstream = make(lambda r: v2_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", size="1024x1024", aspect_ratio="16:9"), TARGET)
    assert info.value.param == "size"
    assert upstream.requests == []


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
    make: MakeFn, model: str, fields: dict[str, Any], param: str
) -> None:
    adapter, upstream = make(lambda r: v2_ok())
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
    assert upstream.requests == []


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
            httpx.Response(
                200, content=PNG, headers={"content-type": "image/png", "finish-reason": "CONTENT_FILTERED"}
            ),
        ),
    ],
)
async def test_content_filtered_images_are_content_policy_failures(
    make: MakeFn, model: str, response: httpx.Response
) -> None:
    adapter, _ = make(lambda r: response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(
            ImageRequest(prompt="x", model=model, n=2 if model.startswith("stable") else 1), TARGET
        )
    error = info.value
    assert (error.kind, error.status_code, error.code) == (
        ErrorKind.CONTENT_POLICY,
        400,
        "content_policy_violation",
    )


async def test_raw_image_answer_is_accepted(make: MakeFn) -> None:
    adapter, _ = make(
        lambda r: httpx.Response(
            200, content=PNG, headers={"content-type": "image/png", "finish-reason": "SUCCESS", "seed": "99"}
        )
    )
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
        (httpx.Response(502, text="<html>bad gateway</html>"), ErrorKind.UNAVAILABLE, 502, None),
        (httpx.Response(500, content=b""), ErrorKind.UNAVAILABLE, 500, None),
    ],
)
@pytest.mark.parametrize("model", ["stable-diffusion-v1-6", "core"])
async def test_error_statuses_are_classified(
    make: MakeFn, model: str, response: httpx.Response, kind: ErrorKind, status: int, code: str | None
) -> None:
    adapter, _ = make(lambda r: response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.code) == (kind, status, code)
    assert error.message.startswith("stability-ai")


async def test_upstream_error_text_is_kept(make: MakeFn) -> None:
    adapter, _ = make(lambda r: v2_error(400, "bad_request", "aspect_ratio: must be one of", "seed: too big"))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert "aspect_ratio: must be one of; seed: too big" in info.value.message


@pytest.mark.parametrize(
    ("headers", "retry_after"), [({}, 60.0), ({"retry-after": "5"}, 5.0), ({"retry-after-ms": "1500"}, 1.5)]
)
async def test_rate_limit_waits_60_s_unless_told_otherwise(
    make: MakeFn, headers: dict[str, str], retry_after: float
) -> None:
    adapter, _ = make(
        lambda r: v2_error(429, "rate_limit_exceeded", "timed out for 60 seconds", headers=headers)
    )
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(
    ("model", "response", "words"),
    [
        ("stable-diffusion-v1-6", httpx.Response(200, text="<html/>"), "non-JSON"),
        ("stable-diffusion-v1-6", httpx.Response(200, content=b""), "empty body"),
        ("stable-diffusion-v1-6", httpx.Response(200, json={"artifacts": []}), "without images"),
        ("stable-diffusion-v1-6", httpx.Response(200, json={"artifacts": [{"base64": "%%%"}]}), "base64"),
        ("core", httpx.Response(200, json={"finish_reason": "SUCCESS"}), "empty or not a string"),
        ("core", v2_ok(image=base64.b64encode(b"not an image").decode()), "not an image"),
        ("core", v2_ok(finish="SOMETHING_NEW"), "unknown finish reason"),
        ("core", httpx.Response(200, content=b""), "empty body"),
    ],
)
async def test_broken_success_bodies_are_upstream_bugs(
    make: MakeFn, model: str, response: httpx.Response, words: str
) -> None:
    adapter, _ = make(lambda r: response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model=model), TARGET)
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UPSTREAM_BUG, 502)
    assert words in info.value.message


@pytest.mark.parametrize(
    ("exc", "kind", "status", "words"),
    [
        (httpx.ReadTimeout("timed out"), ErrorKind.TIMEOUT, 408, "timed out"),
        (httpx.ConnectError("[Errno 111] Connection refused"), ErrorKind.UNAVAILABLE, 502, "refused"),
        (httpx.ReadError("Connection reset by peer"), ErrorKind.UNAVAILABLE, 502, "reset"),
        (httpx.RemoteProtocolError("incomplete chunked read"), ErrorKind.UNAVAILABLE, 502, "truncated"),
    ],
)
async def test_network_failures_are_classified(
    make: MakeFn, exc: Exception, kind: ErrorKind, status: int, words: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    adapter, _ = make(handler)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", n=2), TARGET)
    assert (info.value.kind, info.value.status_code) == (kind, status)
    assert words in info.value.message


@pytest.mark.parametrize(
    "response",
    [
        v1_error(401, "unauthorized", f"invalid key {KEY}"),
        v2_error(400, "bad_request", f"Bearer {KEY} is malformed"),
        httpx.Response(503, text=f"upstream says {KEY}"),
        httpx.Response(200, text=f"broken {KEY}"),
    ],
)
async def test_api_key_never_appears_in_error_messages(make: MakeFn, response: httpx.Response) -> None:
    adapter, _ = make(lambda r: response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), TARGET)
    assert KEY not in info.value.message
    assert KEY not in str(info.value)


def test_sdxl_allows_exactly_its_nine_sizes() -> None:
    assert len(SDXL_SIZES) == 9


@pytest.mark.parametrize("user", ["end\r\nuser", "us\u00e9r"])
async def test_user_that_cannot_be_a_header_is_refused(make: MakeFn, user: str) -> None:
    adapter, upstream = make(lambda r: v2_ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", user=user), TARGET)
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "user")
    assert upstream.requests == []
