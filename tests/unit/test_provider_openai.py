"""The OpenAI adapter over real sockets: request mapping, parsing, error classification.

The OpenAI emulator (tests/emulators) records what the adapter sent and answers either for real or
with the exact body a case needs (``Fault.status``); a ``RawUpstream`` plays the image CDN.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Callable
from types import MappingProxyType
from typing import Any

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.progress import PartialImage, ProgressEvent
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.progress import AttemptEvents
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.providers.openai.adapter import OpenAIAdapter
from imagegateway_server.providers.openai.models import model_family
from tests.conftest import OPENAI_SECRET, Emulators
from tests.credentials import api_key
from tests.emulators import Fault, OpenAIEmulator
from tests.emulators.images import noise_png, solid_image
from tests.raw_http import FailingResolver, RawUpstream, StalledResolver, http_response

KEY = OPENAI_SECRET  # what the session's emulator accepts
TARGET = UpstreamTarget(credential=api_key(KEY))


def png(width: int = 4, height: int = 3) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


PNG = png()
PNG_B64 = base64.b64encode(PNG).decode()


def ok(*items: dict[str, Any], **extra: Any) -> Fault:
    body = {"created": 1713833628, "data": list(items) or [{"b64_json": PNG_B64}], **extra}
    return Fault.status(200, body, headers={"x-request-id": "req_123"})


def openai_error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Fault:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Fault.status(status, body, headers=headers)


def raw(status: int, body: str | bytes, headers: dict[str, str] | None = None) -> Fault:
    """An answer with exactly this (non-JSON or empty) body."""
    return Fault.status(status, body, headers=headers)


@pytest.fixture
def emu(emulators: Emulators) -> OpenAIEmulator:
    return emulators.openai


MakeFn = Callable[..., OpenAIAdapter]


@pytest.fixture
async def make(emu: OpenAIEmulator) -> AsyncIterator[MakeFn]:
    """Makes adapters pointed at the emulator that answer every request with ``answer`` (if given)."""
    adapters: list[OpenAIAdapter] = []

    def factory(answer: Fault | None = None, **kwargs: Any) -> OpenAIAdapter:
        if answer is not None:
            emu.inject(answer, times=None)
        adapter = OpenAIAdapter(base_url=kwargs.pop("base_url", emu.base_url), **kwargs)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


# -- request mapping -------------------------------------------------------------------------------


async def test_dall_e_3_request_is_mapped_field_for_field(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make()  # the emulator answers for real: it validates the request as OpenAI would
    request = ImageRequest(
        prompt="a cat", model="dall-e-3", size="1792x1024", quality="hd", style="natural", user="u-1"
    )
    result = await adapter.generate(request, TARGET)
    sent = emu.requests[-1]
    assert sent.method == "POST"
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert (result.images[0].width, result.images[0].height) == (1792, 1024)
    assert sent.json == {
        "prompt": "a cat",
        "model": "dall-e-3",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "user": "u-1",
        "response_format": "b64_json",
    }


async def test_model_defaults_to_gpt_image_2_the_end_of_dall_e_2s_successor_chain(
    make: MakeFn, emu: OpenAIEmulator
) -> None:
    # OpenAI's reference no longer defaults ``model``; dall-e-2 (the old default) is shut down.
    adapter = make()
    assert adapter.default_model() == "gpt-image-2"
    result = await adapter.generate(ImageRequest(prompt="a cat", n=2), TARGET)
    assert emu.requests[-1].json == {"prompt": "a cat", "model": "gpt-image-2", "n": 2}
    assert result.model == "gpt-image-2" and len(result.images) == 2
    assert len(emu.requests) == 1  # no 404 and retry on the way


async def test_gpt_image_never_gets_response_format_or_style(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make(ok())
    request = ImageRequest(
        prompt="a cat",
        model="gpt-image-1",
        quality="high",
        background="transparent",
        output_format="webp",
        output_compression=80,
        moderation="low",
        response_format=ResponseFormat.URL,
    )
    result = await adapter.generate(request, TARGET)
    assert emu.requests[-1].json == {
        "prompt": "a cat",
        "model": "gpt-image-1",
        "n": 1,
        "quality": "high",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 80,
        "moderation": "low",
    }
    # A URL was asked for but gpt-image only returns base64: the bytes come back for the gateway to host.
    assert result.images[0].data == PNG


async def test_chatgpt_image_latest_is_a_gpt_image_model(make: MakeFn, emu: OpenAIEmulator) -> None:
    assert model_family("chatgpt-image-latest") is model_family("gpt-image-1.5")
    adapter = make(ok())
    await adapter.generate(ImageRequest(prompt="x", model="chatgpt-image-latest"), TARGET)
    sent = emu.requests[-1].json
    assert sent is not None and "response_format" not in sent


async def test_url_response_format_asks_dall_e_for_urls_and_returns_them(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make(ok({"url": "https://cdn.example/img.png", "revised_prompt": "A cat."}))
    request = ImageRequest(prompt="a cat", model="dall-e-3", response_format=ResponseFormat.URL)
    result = await adapter.generate(request, TARGET)
    assert (emu.requests[-1].json or {})["response_format"] == "url"
    image = result.images[0]
    assert (image.data, image.url, image.revised_prompt) == (None, "https://cdn.example/img.png", "A cat.")


async def test_url_answer_is_fetched_into_bytes_without_the_api_key(make: MakeFn) -> None:
    png_answer = http_response(200, PNG, {"content-type": "image/png"})
    async with RawUpstream(lambda r: png_answer) as cdn:
        adapter = make(ok({"url": cdn.url("/img.png")}))
        result = await adapter.generate(ImageRequest(prompt="a cat", model="dall-e-2"), TARGET)
    assert result.images[0].data == PNG
    (download,) = cdn.requests
    assert (download.method, download.target) == ("GET", "/img.png")
    assert "authorization" not in download.headers


async def test_failed_image_download_is_an_upstream_bug(make: MakeFn) -> None:
    async with RawUpstream(lambda r: http_response(403, b"expired")) as cdn:
        adapter = make(ok({"url": cdn.url("/img.png")}))
        with pytest.raises(ProviderError) as info:
            await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UPSTREAM_BUG, 502)


async def test_target_base_url_and_forwarded_headers_are_used_but_cannot_replace_auth(
    make: MakeFn, emu: OpenAIEmulator
) -> None:
    adapter = make(base_url="https://api.openai.com/v1")
    target = UpstreamTarget(
        credential=api_key(KEY),
        base_url=emu.base_url + "/",
        headers=MappingProxyType({"x-trace": "t-1", "authorization": "Bearer other"}),
    )
    await adapter.generate(ImageRequest(prompt="x"), target)
    sent = emu.requests[-1]
    assert sent.path == "/v1/images/generations"
    assert sent.headers["x-trace"] == "t-1"
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # one header: the emulator joins repeats


# -- refused parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "fields", "param"),
    [
        ("dall-e-3", {"negative_prompt": "blurry"}, "negative_prompt"),
        ("dall-e-3", {"seed": 42}, "seed"),
        ("gpt-image-1", {"cfg_scale": 7.0}, "cfg_scale"),
        ("dall-e-2", {"style_preset": "anime"}, "style_preset"),
        ("gpt-image-1", {"aspect_ratio": "16:9"}, "aspect_ratio"),
        ("gpt-image-1", {"style": "vivid"}, "style"),
        ("dall-e-2", {"style": "vivid"}, "style"),
        ("dall-e-3", {"background": "transparent"}, "background"),
        ("dall-e-3", {"output_format": "png"}, "output_format"),
        ("dall-e-2", {"output_compression": 50}, "output_compression"),
        ("dall-e-3", {"moderation": "low"}, "moderation"),
        ("gpt-image-1", {"extra": {"steps": 30}}, "steps"),
        ("gpt-image-1", {"extra": {"partial_images": 2}}, "partial_images"),
    ],
)
async def test_parameters_openai_does_not_take_are_refused_before_any_call(
    make: MakeFn, emu: OpenAIEmulator, model: str, fields: dict[str, Any], param: str
) -> None:
    adapter = make(ok())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat", model=model, **fields), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.param, error.code) == (
        ErrorKind.BAD_REQUEST,
        400,
        param,
        "unknown_parameter",
    )
    assert param in error.message and "openai" in error.message
    assert emu.requests == []


async def test_stream_true_is_refused_and_stream_false_forwarded(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make()
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x", model="gpt-image-1", extra={"stream": True}), TARGET)
    assert info.value.param == "stream"
    await adapter.generate(ImageRequest(prompt="x", model="gpt-image-1", extra={"stream": False}), TARGET)
    assert (emu.requests[-1].json or {})["stream"] is False


# -- success parsing -------------------------------------------------------------------------------


async def test_success_is_parsed_with_sniffed_size_usage_and_request_id(make: MakeFn) -> None:
    usage = {"input_tokens": 50, "output_tokens": 50, "total_tokens": 100}
    adapter = make(
        ok(
            {"b64_json": PNG_B64, "revised_prompt": "A cat."},
            {"b64_json": base64.b64encode(png(8, 6)).decode()},
            usage=usage,
        )
    )
    result = await adapter.generate(ImageRequest(prompt="a cat", model="gpt-image-1", n=2), TARGET)
    assert result.created == 1713833628
    assert result.provider_request_id == "req_123"
    assert result.usage == usage
    first, second = result.images
    assert (first.mime_type, first.width, first.height, first.revised_prompt) == ("image/png", 4, 3, "A cat.")
    assert (second.width, second.height) == (8, 6)


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (raw(200, "<html>oops</html>"), "non-JSON"),
        (raw(200, b""), "empty body"),
        (Fault.status(200, {"created": 1}), "without images"),
        (Fault.status(200, {"created": 1, "data": []}), "without images"),
        (Fault.status(200, [1, 2]), "non-JSON"),
        (Fault.status(200, {"data": [{"b64_json": "***not base64***"}]}), "not valid base64"),
        (
            Fault.status(200, {"data": [{"b64_json": base64.b64encode(b"hello").decode()}]}),
            "not an image",
        ),
        (Fault.status(200, {"data": [{"revised_prompt": "x"}]}), "neither"),
        (Fault.status(200, {"data": ["x"]}), "not an object"),
        (Fault.malformed(), "non-JSON"),
        (Fault.empty(), "empty body"),
    ],
)
async def test_broken_success_bodies_are_upstream_bugs(make: MakeFn, response: Fault, words: str) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert (info.value.kind, info.value.status_code) == (ErrorKind.UPSTREAM_BUG, 502)
    assert words in info.value.message


async def test_body_over_the_size_cap_is_an_upstream_bug(make: MakeFn) -> None:
    adapter = make(ok(), max_body_bytes=100)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert info.value.kind is ErrorKind.UPSTREAM_BUG


# -- error classification --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "kind", "status", "code", "param"),
    [
        (
            openai_error(
                400,
                "Your request was rejected as a result of our safety system.",
                code="content_policy_violation",
            ),
            ErrorKind.CONTENT_POLICY,
            400,
            "content_policy_violation",
            None,
        ),
        (
            openai_error(
                400,
                "Your request was rejected by the safety system.",
                type_="image_generation_user_error",
                code="moderation_blocked",
            ),
            ErrorKind.CONTENT_POLICY,
            400,
            "moderation_blocked",
            None,
        ),
        (
            openai_error(400, "Invalid value: 'hd'.", code="invalid_value", param="quality"),
            ErrorKind.BAD_REQUEST,
            400,
            "invalid_value",
            "quality",
        ),
        (openai_error(400, "You must provide n=1 for this model."), ErrorKind.BAD_REQUEST, 400, None, None),
        (openai_error(422, "Unprocessable."), ErrorKind.BAD_REQUEST, 422, None, None),
        (
            openai_error(401, "Incorrect API key provided.", code="invalid_api_key"),
            ErrorKind.AUTHENTICATION,
            401,
            "invalid_api_key",
            None,
        ),
        (
            openai_error(403, "Your organization must be verified.", code="model_not_available"),
            ErrorKind.PERMISSION_DENIED,
            403,
            "model_not_available",
            None,
        ),
        (
            openai_error(404, "The model `x` does not exist.", code="model_not_found"),
            ErrorKind.NOT_FOUND,
            404,
            "model_not_found",
            None,
        ),
        (openai_error(408, "Request timed out."), ErrorKind.TIMEOUT, 408, None, None),
        (
            openai_error(429, "Rate limit exceeded.", type_="requests", code="rate_limit_exceeded"),
            ErrorKind.RATE_LIMITED,
            429,
            "rate_limit_exceeded",
            None,
        ),
        (
            openai_error(
                429, "You exceeded your current quota.", type_="insufficient_quota", code="insufficient_quota"
            ),
            ErrorKind.RATE_LIMITED,
            429,
            "insufficient_quota",
            None,
        ),
        (
            openai_error(500, "The server had an error.", type_="server_error"),
            ErrorKind.UNAVAILABLE,
            500,
            None,
            None,
        ),
        (
            openai_error(
                503,
                "The engine is currently overloaded.",
                type_="service_unavailable_error",
                code="server_is_overloaded",
            ),
            ErrorKind.UNAVAILABLE,
            503,
            "server_is_overloaded",
            None,
        ),
        (raw(502, "<html>Bad Gateway</html>"), ErrorKind.UNAVAILABLE, 502, None, None),
        (raw(503, b""), ErrorKind.UNAVAILABLE, 503, None, None),
        (raw(400, "not json"), ErrorKind.BAD_REQUEST, 400, None, None),
        (raw(401, b""), ErrorKind.AUTHENTICATION, 401, None, None),
        (raw(429, "slow down"), ErrorKind.RATE_LIMITED, 429, None, None),
        (
            raw(302, "", headers={"location": "https://elsewhere/"}),
            ErrorKind.UPSTREAM_BUG,
            502,
            "unexpected_status",
            None,
        ),
    ],
)
async def test_error_statuses_are_classified(
    make: MakeFn, response: Fault, kind: ErrorKind, status: int, code: str | None, param: str | None
) -> None:
    adapter = make(response)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    error = info.value
    assert (error.kind, error.status_code, error.code, error.param) == (kind, status, code, param)
    assert error.provider == "openai"
    assert error.message.startswith("openai")


async def test_upstream_message_is_kept_in_the_error(make: MakeFn) -> None:
    adapter = make(openai_error(503, "The engine is currently overloaded."))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert "The engine is currently overloaded." in info.value.message


@pytest.mark.parametrize(
    ("headers", "retry_after"),
    [({"retry-after-ms": "2500"}, 2.5), ({"retry-after": "3"}, 3.0), ({}, None)],
)
async def test_rate_limit_carries_retry_after(make: MakeFn, headers: dict[str, str], retry_after: float | None) -> None:
    adapter = make(openai_error(429, "Rate limit exceeded.", code="rate_limit_exceeded", headers=headers))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert info.value.retry_after == retry_after


def closed_port() -> int:
    """A loopback port nothing listens on (bound, never listening, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def generate_against(make: MakeFn, failure: str, attempt_seconds: float) -> ProviderError:
    """Runs one generation against an upstream failing in the way ``failure`` names."""
    target = UpstreamTarget(credential=api_key(KEY), timeout=attempt_seconds)
    if failure in ("hang", "reset", "truncated"):
        adapter = make({"hang": Fault.hang(), "reset": Fault.reset(), "truncated": Fault.truncated()}[failure])
    elif failure == "refused":
        adapter = make(base_url=f"http://127.0.0.1:{closed_port()}/v1")
    elif failure == "stalled_dns":
        adapter = make(base_url="https://api.openai.test/v1", client=UpstreamClient(resolver=StalledResolver()))
    else:
        adapter = make(base_url="https://api.openai.test/v1", client=UpstreamClient(resolver=FailingResolver()))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), target)
    return info.value


@pytest.mark.parametrize(
    ("failure", "kind", "status", "code"),
    [
        ("hang", ErrorKind.TIMEOUT, 408, "timeout"),
        ("stalled_dns", ErrorKind.TIMEOUT, 408, "timeout"),
        ("refused", ErrorKind.UNAVAILABLE, 502, "connection_refused"),
        ("dns", ErrorKind.UNAVAILABLE, 502, "dns_failure"),
        ("reset", ErrorKind.UNAVAILABLE, 502, "connection_reset"),
        ("truncated", ErrorKind.UNAVAILABLE, 502, "truncated_response"),
    ],
)
async def test_network_failures_are_classified(
    make: MakeFn, failure: str, kind: ErrorKind, status: int, code: str
) -> None:
    error = await generate_against(make, failure, 0.3 if failure in ("hang", "stalled_dns") else 10)
    assert (error.kind, error.status_code, error.code) == (kind, status, code)


async def test_attempt_timeout_bounds_a_slow_upstream(make: MakeFn) -> None:
    adapter = make(Fault.hang())
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), UpstreamTarget(credential=api_key(KEY), timeout=0.05))
    assert (info.value.kind, info.value.status_code) == (ErrorKind.TIMEOUT, 408)


@pytest.mark.parametrize(
    "answer",
    [
        openai_error(401, f"Incorrect API key provided: {KEY}.", code="invalid_api_key"),
        openai_error(400, f"bad header Bearer {KEY}"),
        raw(500, f"debug: key={KEY}"),
        raw(200, f"not json {KEY}"),
    ],
)
async def test_api_key_never_appears_in_error_messages(make: MakeFn, answer: Fault) -> None:
    adapter = make(answer)
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert KEY not in info.value.message
    assert KEY not in str(info.value)
    assert KEY[-12:] not in info.value.message


async def test_api_key_never_appears_in_a_network_failure(make: MakeFn) -> None:
    resolver = FailingResolver(f"cannot connect with {KEY}")
    adapter = make(base_url="https://api.openai.test/v1", client=UpstreamClient(resolver=resolver))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="a cat"), TARGET)
    assert info.value.code == "dns_failure"
    assert KEY not in str(info.value) and KEY[-12:] not in info.value.message


async def test_api_key_that_cannot_be_a_header_is_an_authentication_error(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make(ok())
    bad_key = "sk-line\nbreak-secret-abcdef"
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), UpstreamTarget(credential=api_key(bad_key)))
    assert (info.value.kind, info.value.status_code) == (ErrorKind.AUTHENTICATION, 401)
    assert "secret" not in info.value.message
    assert emu.requests == []


async def test_forwarded_header_that_cannot_be_sent_is_refused(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make(ok())
    target = UpstreamTarget(credential=api_key(KEY), headers=MappingProxyType({"x-note": "caf\u00e9"}))
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="x"), target)
    assert (info.value.kind, info.value.param) == (ErrorKind.BAD_REQUEST, "x-note")
    assert emu.requests == []


async def test_dall_e_3_fans_n_out_into_single_image_calls(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make()
    result = await adapter.generate(ImageRequest(prompt="p", model="dall-e-3", n=3), TARGET)
    assert len(result.images) == 3
    assert [(r.json or {})["n"] for r in emu.requests] == [1, 1, 1]


async def test_dall_e_3_fan_out_fails_whole_when_one_call_fails(make: MakeFn, emu: OpenAIEmulator) -> None:
    adapter = make()
    emu.inject(openai_error(500, "boom", type_="server_error"))  # whichever call arrives first; the others succeed
    with pytest.raises(ProviderError) as info:
        await adapter.generate(ImageRequest(prompt="p", model="dall-e-3", n=3), TARGET)
    assert info.value.status_code == 500
    # The sibling calls were cancelled, but one already sent still reaches the shared emulator; let
    # every straggler land now, or it takes the next test's injected answer.
    await _until_quiet(emu)


async def _until_quiet(emu: OpenAIEmulator, quiet_seconds: float = 0.3, limit_seconds: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    seen = -1
    while len(emu.requests) != seen and loop.time() < deadline:
        seen = len(emu.requests)
        await asyncio.sleep(quiet_seconds)


# -- streamed partial images -------------------------------------------------------------------------


class _Heard:
    """A listener that keeps the partial images it hears."""

    def __init__(self) -> None:
        self.images: list[PartialImage] = []
        self.images_sent = 0

    def progress(self, event: ProgressEvent) -> None:
        pass

    def partial_image(self, image: PartialImage) -> None:
        self.images_sent += 1
        self.images.append(image)


def _event_stream(partial_b64: str) -> Fault:
    png = base64.b64encode(solid_image(8, 8)).decode()
    partial = {"type": "image_generation.partial_image", "b64_json": partial_b64, "partial_image_index": 0}
    completed = {"type": "image_generation.completed", "b64_json": png}
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in (partial, completed))
    return raw(200, body, headers={"content-type": "text/event-stream"})


async def _streamed(make: MakeFn, answer: Fault) -> _Heard:
    heard = _Heard()
    events = AttemptEvents(heard, target="", provider="openai", model="gpt-image-1.5", retry_index=0)
    request = ImageRequest(prompt="x", model="gpt-image-1.5", stream=True, partial_images=1)
    await make(answer).generate(request, UpstreamTarget(credential=api_key(KEY), events=events))
    return heard


async def test_a_partial_image_comes_with_its_text_as_sent_and_the_bytes_it_decodes_to(make: MakeFn) -> None:
    png = solid_image(4, 4)
    heard = await _streamed(make, _event_stream(base64.b64encode(png).decode()))
    [image] = heard.images
    assert image.data == png and image.b64_json == base64.b64encode(png).decode()


async def test_a_long_partial_image_comes_with_its_text_as_sent_and_its_bytes_from_the_one_parse(
    make: MakeFn,
) -> None:
    png = noise_png(256, 256, 80_000)
    text = base64.b64encode(png)
    assert len(text) > 64 * 1024  # long enough to be cut out of the event before orjson parses the rest
    heard = await _streamed(make, _event_stream(text.decode()))
    [image] = heard.images
    assert image.data == png and image.b64_json == text


async def test_a_generation_body_is_built_once_for_the_check_and_the_call(make: MakeFn) -> None:
    adapter = make()
    built: list[str] = []
    build = adapter.build_body

    def counting(request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        built.append(model)
        return build(request, model, target)

    adapter.build_body = counting  # type: ignore[method-assign]
    await adapter.generate(ImageRequest(prompt="x", model="gpt-image-1.5"), UpstreamTarget(credential=api_key(KEY)))
    assert built == ["gpt-image-1.5"]
    heard = _Heard()
    events = AttemptEvents(heard, target="", provider="openai", model="gpt-image-1.5", retry_index=0)
    streamed = ImageRequest(prompt="x", model="gpt-image-1.5", stream=True, partial_images=1)
    await adapter.generate(streamed, UpstreamTarget(credential=api_key(KEY), events=events))
    assert built == ["gpt-image-1.5"] * 2 and heard.images


async def test_a_partial_image_in_base64_with_line_breaks_is_passed_on_plainly(make: MakeFn) -> None:
    png = solid_image(4, 4)
    text = base64.encodebytes(png).decode()  # 76-character lines
    assert "\n" in text
    heard = await _streamed(make, _event_stream(text))
    [image] = heard.images
    assert image.data == png and image.b64_json == base64.b64encode(png).decode()


async def test_a_partial_image_that_is_not_base64_is_an_upstream_bug_not_spliced_into_the_stream(
    make: MakeFn,
) -> None:
    with pytest.raises(ProviderError) as info:
        await _streamed(make, _event_stream('iVBORw0KGgo"}\n\nevent: injected'))
    assert info.value.kind is ErrorKind.UPSTREAM_BUG
