"""The provider emulators over real sockets: shapes, validation, faults, control API, keep-alive."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator

OPENAI_KEY = "sk-test-openai"
STABILITY_KEY = "sk-test-stability"
OPENAI_AUTH = {"Authorization": f"Bearer {OPENAI_KEY}"}
STABILITY_AUTH = {"Authorization": f"Bearer {STABILITY_KEY}"}
V1_SDXL = "/v1/generation/stable-diffusion-xl-1024-v1-0/text-to-image"
V1_SD16 = "/v1/generation/stable-diffusion-v1-6/text-to-image"
V2_CORE = "/v2beta/stable-image/generate/core"
V2_SD3 = "/v2beta/stable-image/generate/sd3"
V2_ULTRA = "/v2beta/stable-image/generate/ultra"
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIEmulator]:
    emulator = OpenAIEmulator(api_key=OPENAI_KEY)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def stability() -> AsyncIterator[StabilityEmulator]:
    emulator = StabilityEmulator(api_key=STABILITY_KEY)
    await emulator.start()
    yield emulator
    await emulator.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as http:
        yield http


def image_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


async def generate(
    client: httpx.AsyncClient, emu: OpenAIEmulator, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post(
        f"{emu.base_url}/images/generations", json=body, headers=OPENAI_AUTH if headers is None else headers
    )


async def v2(
    client: httpx.AsyncClient, emu: StabilityEmulator, path: str, fields: dict[str, str], accept: str = "image/*"
) -> httpx.Response:
    return await client.post(
        emu.base_url + path, data=fields, files={"none": ""}, headers={**STABILITY_AUTH, "Accept": accept}
    )


def assert_openai_error(
    response: httpx.Response, status: int, code: str | None, param: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    assert error["param"] == param
    return dict(error)


# -- OpenAI: success shapes -----------------------------------------------------------------------


async def test_openai_dalle2_default_returns_url_served_by_emulator(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    response = await generate(client, openai, {"prompt": "a red fox"})
    assert response.status_code == 200
    assert response.headers["x-request-id"].startswith("req_")
    payload = response.json()
    assert isinstance(payload["created"], int)
    [item] = payload["data"]
    assert set(item) == {"url"}
    assert item["url"].startswith(f"{openai.origin}/_emulator/images/")
    download = await client.get(item["url"])
    assert download.headers["content-type"] == "image/png"
    assert image_of(download.content).size == (1024, 1024)


async def test_openai_dalle3_b64_has_revised_prompt(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    body = {
        "prompt": "a fox",
        "model": "dall-e-3",
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "b64_json",
    }
    response = await generate(client, openai, body)
    assert response.status_code == 200
    [item] = response.json()["data"]
    assert "a fox" in item["revised_prompt"]
    assert image_of(base64.b64decode(item["b64_json"])).size == (1792, 1024)


async def test_openai_gpt_image_returns_b64_metadata_and_usage(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    body = {
        "prompt": "a fox",
        "model": "gpt-image-1",
        "n": 2,
        "size": "1536x1024",
        "quality": "low",
        "output_format": "jpeg",
        "output_compression": 80,
        "background": "opaque",
        "moderation": "low",
    }
    response = await generate(client, openai, body)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert len(payload["data"]) == 2
    assert all(set(item) == {"b64_json"} for item in payload["data"])
    image = image_of(base64.b64decode(payload["data"][0]["b64_json"]))
    assert (image.format, image.size) == ("JPEG", (1536, 1024))
    assert (payload["background"], payload["output_format"], payload["quality"], payload["size"]) == (
        "opaque",
        "jpeg",
        "low",
        "1536x1024",
    )
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0


async def test_openai_gpt_image_2_accepts_custom_size_and_rejects_bad_one(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    ok = await generate(client, openai, {"prompt": "x", "model": "gpt-image-2", "size": "2048x1152"})
    assert ok.status_code == 200
    assert image_of(base64.b64decode(ok.json()["data"][0]["b64_json"])).size == (2048, 1152)
    bad = await generate(client, openai, {"prompt": "x", "model": "gpt-image-2", "size": "1000x1000"})
    error = assert_openai_error(bad, 400, "invalid_value", "size")
    assert error["type"] == "image_generation_user_error"
    assert "divisible by 16" in error["message"]


async def test_openai_gpt_image_stream_sends_partial_and_completed_events(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    body = {"prompt": "x", "model": "gpt-image-1.5", "stream": True, "partial_images": 1}
    response = await generate(client, openai, body)
    assert response.headers["content-type"] == "text/event-stream"
    events = [line for line in response.text.splitlines() if line.startswith("event: ")]
    assert events == ["event: image_generation.partial_image", "event: image_generation.completed"]


async def test_openai_stream_gap_sends_the_head_then_each_event_later_with_images_of_the_size_asked(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    fault = Fault.stream_gap(30, image_bytes=100_000, first_ms=50)
    assert Fault.from_json(fault.to_json()) == fault  # the control API's form, as the bench sends it
    openai.inject(fault)
    body = {"prompt": "x", "model": "gpt-image-1.5", "stream": True, "partial_images": 1}
    asked_at = time.monotonic()
    async with client.stream("POST", f"{openai.base_url}/images/generations", json=body, headers=OPENAI_AUTH) as answer:
        head_at = time.monotonic()
        events: list[tuple[float, bytes]] = []
        async for line in answer.aiter_lines():
            if line.startswith("data: "):
                events.append((time.monotonic(), line.encode()))
    (partial_at, partial), (completed_at, _) = events
    # Lower bounds from the request, which the emulator's waits follow: a sleep only takes longer, but
    # a busy machine may hand this client the head (or an event) late, so gaps between arrivals can shrink.
    assert partial_at - asked_at >= 0.05 and completed_at - asked_at >= 0.08
    assert partial_at - head_at >= 0.02  # the head came first, well before the partial image
    png = base64.b64decode(json.loads(partial[len("data: ") :])["b64_json"])
    assert 100_000 <= len(png) < 150_000


# -- OpenAI: validation ---------------------------------------------------------------------------


async def test_openai_rejects_missing_and_wrong_api_key(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    missing = await generate(client, openai, {"prompt": "x"}, headers={})
    assert_openai_error(missing, 401, None)
    wrong = await generate(client, openai, {"prompt": "x"}, headers={"Authorization": "Bearer sk-wrong-1234"})
    error = assert_openai_error(wrong, 401, "invalid_api_key")
    assert "Incorrect API key provided: sk-" in error["message"]
    assert "1234" in error["message"] and "sk-wrong-1234" not in error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({}, 400, "missing_required_parameter", "prompt"),
        ({"prompt": ""}, 400, "empty_string", "prompt"),
        ({"prompt": "x" * 1001}, 400, "string_above_max_length", "prompt"),
        ({"prompt": "x", "model": "dall-e-9"}, 404, "model_not_found", None),
        ({"prompt": "x", "n": 11}, 400, "integer_above_max_value", "n"),
        ({"prompt": "x", "n": "2"}, 400, "invalid_type", "n"),
        ({"prompt": "x", "size": "300x300"}, 400, "invalid_value", "size"),
        ({"prompt": "x", "model": "dall-e-3", "quality": "low"}, 400, "invalid_value", "quality"),
        (
            {"prompt": "x", "model": "gpt-image-1", "response_format": "b64_json"},
            400,
            "unknown_parameter",
            "response_format",
        ),
        ({"prompt": "x", "model": "gpt-image-1-mini", "style": "vivid"}, 400, "unknown_parameter", "style"),
        ({"prompt": "x", "model": "gpt-image-1", "quality": "hd"}, 400, "invalid_value", "quality"),
        (
            {"prompt": "x", "model": "gpt-image-1", "output_compression": 50},
            400,
            "invalid_png_output_compression",
            "output_compression",
        ),
        ({"prompt": "x", "background": "transparent"}, 400, "unknown_parameter", "background"),
        ({"prompt": "x", "seed": 42}, 400, "unknown_parameter", "seed"),
        (
            {"prompt": "x", "model": "gpt-image-1", "negative_prompt": "blur"},
            400,
            "unknown_parameter",
            "negative_prompt",
        ),
    ],
)
async def test_openai_validation_errors(
    openai: OpenAIEmulator, client: httpx.AsyncClient, body: dict[str, Any], status: int, code: str, param: str | None
) -> None:
    assert_openai_error(await generate(client, openai, body), status, code, param)


async def test_openai_dalle3_n_above_one_has_the_exact_body(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    response = await generate(client, openai, {"prompt": "x", "model": "dall-e-3", "n": 2})
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": "You must provide n=1 for this model.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


async def test_openai_unknown_path_is_invalid_url(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    response = await client.post(f"{openai.base_url}/images/nope", json={}, headers=OPENAI_AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (POST /v1/images/nope)"


# -- Stability v1 ---------------------------------------------------------------------------------


async def test_stability_v1_json_returns_artifacts(stability: StabilityEmulator, client: httpx.AsyncClient) -> None:
    body = {
        "text_prompts": [{"text": "a fox", "weight": 1}, {"text": "blurry", "weight": -1}],
        "width": 1152,
        "height": 896,
        "samples": 2,
        "seed": 7,
        "cfg_scale": 7,
        "steps": 30,
        "style_preset": "photographic",
        "sampler": "K_EULER",
        "clip_guidance_preset": "NONE",
    }
    response = await client.post(
        stability.base_url + V1_SDXL, json=body, headers={**STABILITY_AUTH, "Accept": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"]
    artifacts = response.json()["artifacts"]
    assert [(a["seed"], a["finishReason"]) for a in artifacts] == [(7, "SUCCESS"), (8, "SUCCESS")]
    assert image_of(base64.b64decode(artifacts[0]["base64"])).size == (1152, 896)


async def test_stability_v1_png_accept_returns_raw_png_with_headers(
    stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    body = {"text_prompts": [{"text": "a fox"}], "width": 640, "height": 384}
    response = await client.post(
        stability.base_url + V1_SD16, json=body, headers={**STABILITY_AUTH, "Accept": "image/png"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["finish-reason"] == "SUCCESS"
    assert int(response.headers["seed"]) > 0
    assert image_of(response.content).size == (640, 384)


@pytest.mark.parametrize(
    ("path", "body", "accept", "status", "name", "message"),
    [
        (
            "/v1/generation/some-fake-engine/text-to-image",
            {"text_prompts": [{"text": "x"}]},
            "application/json",
            404,
            "not_found",
            "The specified engine (ID some-fake-engine) was not found.",
        ),
        (
            V1_SDXL,
            {"text_prompts": [{"text": "x"}], "width": 512, "height": 512},
            "application/json",
            400,
            "invalid_height_or_width",
            None,
        ),
        (
            V1_SD16,
            {"text_prompts": [{"text": "x"}], "width": 1600},
            "application/json",
            400,
            "invalid_height_or_width",
            None,
        ),
        (V1_SD16, {"text_prompts": [{"text": "x"}], "samples": 2}, "image/png", 400, "invalid_samples", None),
        (V1_SD16, {"text_prompts": []}, "application/json", 400, "invalid_prompts", None),
        (V1_SD16, {"text_prompts": [{"text": "x"}], "cfg_scale": 40}, "application/json", 400, "bad_request", None),
        (V1_SD16, {"text_prompts": [{"text": "x"}], "steps": 5}, "application/json", 400, "bad_request", None),
        (
            V1_SD16,
            {"text_prompts": [{"text": "x"}], "style_preset": "vivid"},
            "application/json",
            400,
            "bad_request",
            None,
        ),
    ],
)
async def test_stability_v1_validation_errors(
    stability: StabilityEmulator,
    client: httpx.AsyncClient,
    path: str,
    body: dict[str, Any],
    accept: str,
    status: int,
    name: str,
    message: str | None,
) -> None:
    response = await client.post(stability.base_url + path, json=body, headers={**STABILITY_AUTH, "Accept": accept})
    assert response.status_code == status, response.text
    payload = response.json()
    assert set(payload) == {"id", "name", "message"}
    assert payload["name"] == name
    if message is not None:
        assert payload["message"] == message


async def test_stability_v1_missing_auth_is_unauthorized(
    stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    response = await client.post(stability.base_url + V1_SD16, json={"text_prompts": [{"text": "x"}]})
    assert response.status_code == 401
    assert response.json()["name"] == "unauthorized"
    assert response.json()["message"] == "missing authorization header"


# -- Stability v2beta -----------------------------------------------------------------------------


async def test_stability_v2_core_image_accept_returns_bytes_with_headers(
    stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    fields = {
        "prompt": "a fox",
        "aspect_ratio": "16:9",
        "seed": "42",
        "output_format": "webp",
        "negative_prompt": "blur",
        "style_preset": "anime",
    }
    response = await v2(client, stability, V2_CORE, fields)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert response.headers["finish-reason"] == "SUCCESS"
    assert response.headers["seed"] == "42"
    image = image_of(response.content)
    assert image.format == "WEBP"
    assert image.size[0] > image.size[1]


async def test_stability_v2_json_accept_returns_base64_with_typed_content_type(
    stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    fields = {"prompt": "a fox", "model": "sd3.5-large-turbo", "cfg_scale": "1", "output_format": "jpeg"}
    response = await v2(client, stability, V2_SD3, fields, accept="application/json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json; type=image/jpeg"
    assert "finish-reason" not in response.headers
    payload = response.json()
    assert payload["finish_reason"] == "SUCCESS"
    assert isinstance(payload["seed"], int) and payload["seed"] > 0
    assert image_of(base64.b64decode(payload["image"])).size == (1024, 1024)


async def test_stability_v2_ultra_png(stability: StabilityEmulator, client: httpx.AsyncClient) -> None:
    response = await v2(client, stability, V2_ULTRA, {"prompt": "a fox", "aspect_ratio": "9:21"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    width, height = image_of(response.content).size
    assert height > 2 * width


async def test_stability_v2_rejects_json_body(stability: StabilityEmulator, client: httpx.AsyncClient) -> None:
    response = await client.post(
        stability.base_url + V2_CORE, json={"prompt": "x"}, headers={**STABILITY_AUTH, "Accept": "image/*"}
    )
    assert response.status_code == 400
    payload = response.json()
    assert set(payload) == {"id", "name", "errors"}
    assert len(payload["id"]) == 32 and payload["name"] == "bad_request"
    assert payload["errors"] and all(isinstance(e, str) for e in payload["errors"])


@pytest.mark.parametrize(
    ("path", "fields", "accept", "needle"),
    [
        (V2_CORE, {"prompt": "x"}, "*/*", "accept"),
        (V2_CORE, {"prompt": "x"}, "text/html", "accept"),
        (V2_CORE, {}, "image/*", "prompt"),
        (V2_CORE, {"prompt": "x", "aspect_ratio": "4:3"}, "image/*", "aspect_ratio"),
        (V2_CORE, {"prompt": "x", "seed": "4294967295"}, "image/*", "seed"),
        (V2_CORE, {"prompt": "x", "output_format": "gif"}, "image/*", "output_format"),
        (V2_CORE, {"prompt": "x", "cfg_scale": "4"}, "image/*", "cfg_scale"),
        (V2_CORE, {"prompt": "x", "samples": "2"}, "image/*", "samples"),
        (V2_SD3, {"prompt": "x", "model": "sd4"}, "image/*", "model"),
        (V2_SD3, {"prompt": "x", "mode": "image-to-image"}, "image/*", "image"),
    ],
)
async def test_stability_v2_validation_errors(
    stability: StabilityEmulator, client: httpx.AsyncClient, path: str, fields: dict[str, str], accept: str, needle: str
) -> None:
    response = await v2(client, stability, path, fields, accept=accept)
    assert response.status_code == 400, response.text
    assert needle in response.json()["errors"][0]


async def test_stability_v2_wrong_key_is_unauthorized(stability: StabilityEmulator, client: httpx.AsyncClient) -> None:
    response = await client.post(
        stability.base_url + V2_CORE,
        data={"prompt": "x"},
        files={"none": ""},
        headers={"Authorization": "Bearer sk-nope-9999", "Accept": "image/*"},
    )
    assert response.status_code == 401
    assert response.json()["name"] == "unauthorized"


# -- Faults ---------------------------------------------------------------------------------------


async def test_status_fault_uses_each_providers_error_shape(
    openai: OpenAIEmulator, stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    openai.inject(Fault.status(503))
    error = assert_openai_error(await generate(client, openai, {"prompt": "x"}), 503, "server_is_overloaded")
    assert error["type"] == "service_unavailable_error"

    stability.inject(Fault.status(500), times=2)
    v1 = await client.post(stability.base_url + V1_SD16, json={}, headers=STABILITY_AUTH)
    assert (v1.status_code, set(v1.json())) == (500, {"id", "name", "message"})
    v2beta = await v2(client, stability, V2_CORE, {"prompt": "x"})
    assert (v2beta.status_code, set(v2beta.json())) == (500, {"id", "name", "errors"})
    assert (await v2(client, stability, V2_CORE, {"prompt": "x"})).status_code == 200


async def test_status_fault_with_custom_body_and_headers(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    openai.inject(Fault.status(502, body={"oops": True}, headers={"x-should-retry": "false"}))
    response = await generate(client, openai, {"prompt": "x"})
    assert (response.status_code, response.json()) == (502, {"oops": True})
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["x-request-id"].startswith("req_")


async def test_faults_apply_fifo_then_normal_and_times_none_until_cleared(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    openai.inject(Fault.status(500), times=2)
    openai.inject(Fault.status(503))
    statuses = [(await generate(client, openai, {"prompt": "x"})).status_code for _ in range(4)]
    assert statuses == [500, 500, 503, 200]
    openai.inject(Fault.status(429), times=None)
    statuses = [(await generate(client, openai, {"prompt": "x"})).status_code for _ in range(3)]
    assert statuses == [429, 429, 429]
    openai.clear_faults()
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 200


async def test_rate_limited_fault_sends_retry_headers(
    openai: OpenAIEmulator, stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    openai.inject(Fault.rate_limited(retry_after=2, retry_after_ms=1500))
    response = await generate(client, openai, {"prompt": "x"})
    assert_openai_error(response, 429, "rate_limit_exceeded")
    assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("2", "1500")
    stability.inject(Fault.rate_limited())
    limited = await v2(client, stability, V2_CORE, {"prompt": "x"})
    assert limited.status_code == 429
    assert "retry-after" not in limited.headers
    assert limited.json()["id"] == limited.json()["name"] == "rate_limit_exceeded"


async def test_latency_fault_delays_then_answers_or_applies_then(
    openai: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    openai.inject(Fault.latency(200))
    openai.inject(Fault.latency(100, then=Fault.status(500)))
    started = time.perf_counter()
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 200
    assert time.perf_counter() - started >= 0.19
    started = time.perf_counter()
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 500
    assert time.perf_counter() - started >= 0.09


async def test_reset_fault_aborts_the_connection(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    openai.inject(Fault.reset())
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await generate(client, openai, {"prompt": "x"})
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 200


async def test_hang_fault_never_answers(stability: StabilityEmulator) -> None:
    stability.inject(Fault.hang())
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.3)) as http:
        with pytest.raises(httpx.ReadTimeout):
            await v2(http, stability, V2_CORE, {"prompt": "x"})
        assert (await v2(http, stability, V2_CORE, {"prompt": "x"})).status_code == 200


async def test_hanging_connection_does_not_block_stop() -> None:
    emulator = OpenAIEmulator()
    await emulator.start()
    emulator.inject(Fault.hang())
    async with httpx.AsyncClient(timeout=5) as http:
        url = f"{emulator.base_url}/images/generations"
        pending = asyncio.create_task(http.post(url, json={"prompt": "x"}))
        await asyncio.sleep(0.1)
        await asyncio.wait_for(emulator.stop(), 2)
        with pytest.raises(httpx.HTTPError):
            await pending


async def test_malformed_truncated_and_empty_faults(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    openai.inject(Fault.malformed())
    openai.inject(Fault.truncated())
    openai.inject(Fault.empty())
    malformed = await generate(client, openai, {"prompt": "x"})
    assert malformed.status_code == 200
    assert malformed.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        malformed.json()
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await generate(client, openai, {"prompt": "x"})
    empty = await generate(client, openai, {"prompt": "x"})
    assert (empty.status_code, empty.content) == (200, b"")


async def test_content_filter_fault_shapes(
    openai: OpenAIEmulator, stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    openai.inject(Fault.content_filter(), times=2)
    assert_openai_error(await generate(client, openai, {"prompt": "x"}), 400, "content_policy_violation")
    gpt = await generate(client, openai, {"prompt": "x", "model": "gpt-image-1"})
    error = assert_openai_error(gpt, 400, "moderation_blocked")
    assert error["type"] == "image_generation_user_error"
    assert gpt.headers["x-request-id"] in error["message"]

    stability.inject(Fault.content_filter(), times=3)
    v1 = await client.post(stability.base_url + V1_SD16, json={"text_prompts": [{"text": "x"}]}, headers=STABILITY_AUTH)
    assert v1.json()["artifacts"][0]["finishReason"] == "CONTENT_FILTERED"
    image = await v2(client, stability, V2_CORE, {"prompt": "x"})
    assert (image.status_code, image.headers["finish-reason"]) == (200, "CONTENT_FILTERED")
    as_json = await v2(client, stability, V2_CORE, {"prompt": "x"}, accept="application/json")
    assert as_json.json()["finish_reason"] == "CONTENT_FILTERED"


async def test_moderation_denied_fault_is_403_content_moderation(
    stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    stability.inject(Fault.moderation_denied())
    response = await v2(client, stability, V2_CORE, {"prompt": "x"})
    assert response.status_code == 403
    assert response.json()["name"] == "content_moderation"
    assert "content moderation" in response.json()["errors"][0]


async def test_image_bytes_fault_returns_big_noise_png(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    openai.inject(Fault.image_bytes(300_000))
    response = await generate(client, openai, {"prompt": "x", "response_format": "b64_json"})
    data = base64.b64decode(response.json()["data"][0]["b64_json"])
    assert 270_000 <= len(data) <= 360_000
    assert image_of(data).size == (1024, 1024)


async def test_fault_rate_is_reproducible_with_a_seed(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    async def run() -> list[int]:
        openai.set_fault_rate(0.5, [Fault.status(500), Fault.status(503)], seed=1)
        return [(await generate(client, openai, {"prompt": "x"})).status_code for _ in range(30)]

    first = await run()
    assert first == await run()
    assert 5 <= sum(s != 200 for s in first) <= 25
    assert set(first) == {200, 500, 503}


# -- Recording, control API, thread and CLI -------------------------------------------------------


async def test_requests_are_recorded_and_reset_clears_them(
    openai: OpenAIEmulator, stability: StabilityEmulator, client: httpx.AsyncClient
) -> None:
    await generate(client, openai, {"prompt": "a fox", "model": "dall-e-3"})
    [recorded] = openai.requests
    assert (recorded.method, recorded.path, recorded.json) == (
        "POST",
        "/v1/images/generations",
        {"prompt": "a fox", "model": "dall-e-3"},
    )
    assert recorded.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert recorded.form is None
    await v2(client, stability, V2_CORE, {"prompt": "a fox"})
    [form_request] = stability.requests
    assert form_request.form == {"prompt": "a fox"}
    assert "none" in form_request.files and form_request.json is None
    openai.inject(Fault.status(500), times=None)
    openai.reset()
    assert openai.requests == []
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 200


async def test_http_control_api(openai: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    control = f"{openai.origin}/_emulator"
    health = await client.get(f"{control}/health")
    assert health.json()["status"] == "ok"
    posted = await client.post(
        f"{control}/faults",
        json={
            "faults": [
                {"kind": "status", "status": 503},
                {"kind": "latency", "ms": 1, "then": {"kind": "rate_limited", "retry_after": 3}},
            ],
            "times": 1,
        },
    )
    assert posted.status_code == 200, posted.text
    first = await generate(client, openai, {"prompt": "x"})
    second = await generate(client, openai, {"prompt": "x"})
    assert (first.status_code, second.status_code, second.headers["retry-after"]) == (503, 429, "3")
    assert (
        await client.post(f"{control}/faults", json={"rate": 1.0, "faults": [{"kind": "empty"}], "seed": 1})
    ).status_code == 200
    assert (await generate(client, openai, {"prompt": "x"})).content == b""
    assert (await client.delete(f"{control}/faults")).status_code == 200
    assert (await generate(client, openai, {"prompt": "x"})).status_code == 200
    recorded = (await client.get(f"{control}/requests")).json()["requests"]
    assert len(recorded) == 4
    assert recorded[0]["path"] == "/v1/images/generations"
    assert recorded[0]["headers"]["authorization"] == "***"
    bad = await client.post(f"{control}/faults", json={"faults": [{"kind": "explode"}]})
    assert bad.status_code == 400


def test_running_in_thread_serves_sync_clients() -> None:
    with StabilityEmulator.running_in_thread(api_key=STABILITY_KEY) as emulator:
        emulator.inject(Fault.status(500))
        with httpx.Client(timeout=5) as http:

            def call() -> int:
                return http.post(
                    emulator.base_url + V1_SD16, json={"text_prompts": [{"text": "x"}]}, headers=STABILITY_AUTH
                ).status_code

            assert [call(), call()] == [500, 200]
        assert len(emulator.requests) == 2


async def test_keep_alive_requests_are_fast(openai: OpenAIEmulator) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        await generate(http, openai, {"prompt": "warm up", "response_format": "b64_json"})
        durations = []
        for _ in range(20):
            started = time.perf_counter()
            response = await generate(http, openai, {"prompt": "x", "response_format": "b64_json"})
            durations.append(time.perf_counter() - started)
            assert response.status_code == 200
    assert statistics.median(durations) < 0.040


def test_command_line_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators", "openai", "--port", "0", "--api-key", OPENAI_KEY],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        origin = line.removeprefix("listening on ")
        response = httpx.post(f"{origin}/v1/images/generations", json={"prompt": "x"}, headers=OPENAI_AUTH)
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
