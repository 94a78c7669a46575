"""Edits and variations through the REST shim over real sockets, with the OpenAI SDK unchanged.

``images.edit`` (several images and a mask) and ``images.create_variation`` run against the shim
through a saved fallback config whose primary fails; every bad input is a 400 in OpenAI's envelope
naming the field, before any upstream call; each request leaves one log record with every attempt,
its input images described by size and SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from imagegateway import ImageGatewayClient
from imagegateway.errors import NotFoundError
from tests.conftest import AZURE_SECRET, GEMINI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway
from tests.image_fixtures import mask_png, noise_png, openai_target, png, stability_target

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTTP_TIMEOUT = 30.0


def sdk(gateway: GatewayThread, key: str, headers: dict[str, str]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, **headers},
    )


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"edits-{uuid.uuid4().hex[:6]}", "generate").key


def saved_config(admin: ImageGatewayClient, config: dict[str, Any]) -> dict[str, str]:
    created = admin.create_config(f"edits-{uuid.uuid4().hex[:8]}", config)
    return {"x-portkey-config": created.id}


def inline(config: dict[str, Any]) -> dict[str, str]:
    return {"x-portkey-config": json.dumps(config)}


def log_of(admin: ImageGatewayClient, log_id: str) -> Any:
    def fetch() -> Any:
        try:
            return admin.get_log(log_id)
        except NotFoundError:
            return None

    return eventually(fetch)


def upstream(emulators: Emulators, path: str) -> list[Any]:
    return [r for r in emulators.openai.requests if r.path.endswith(path)]


# -- edits ---------------------------------------------------------------------------------------------


def test_sdk_edit_with_several_images_and_a_mask_falls_back_from_a_failing_primary(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    headers = saved_config(
        admin,
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
                openai_target(emulators, override_params={"model": "gpt-image-2"}),
            ],
        },
    )
    first, second, mask = png(64, 64), png(64, 64, colour=(10, 200, 10)), mask_png(64, 64)
    with sdk(gateway, key, headers) as client:
        raw = client.images.with_raw_response.edit(
            image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
            mask=("m.png", mask, "image/png"),
            prompt="put a hat on the cat",
            input_fidelity="high",
            quality="low",
        )
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens > 0
    calls = upstream(emulators, "/images/edits")
    assert [c.form["model"] for c in calls] == ["gpt-image-1.5", "gpt-image-2"]
    sent = calls[-1]
    assert [name for name, _ in sent.file_parts] == ["image[]", "image[]", "mask"]
    assert [part.data for _, part in sent.file_parts] == [first, second, mask]
    assert sent.form["input_fidelity"] == "high" and sent.form["prompt"] == "put a hat on the cat"
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert log.operation == "edit" and log.fallback_used
    assert [a.status_code for a in log.attempts] == [500, 200]
    assert [i.sha256 for i in log.input_images] == [
        hashlib.sha256(first).hexdigest(),
        hashlib.sha256(second).hexdigest(),
    ]
    assert log.input_mask.sha256 == hashlib.sha256(mask).hexdigest() and log.input_mask.bytes == len(mask)
    assert first not in log.SerializeToString()


def test_an_edit_skips_a_target_that_cannot_edit_as_an_attempt_saying_so(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [500]},
        "targets": [
            openai_target(emulators, override_params={"model": "dall-e-3"}),
            openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
        ],
    }
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.edit(image=("a.png", png(32, 32), "image/png"), prompt="a hat")
    assert raw.parse().data
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert [a.status_code for a in log.attempts] == [400, 200]
    assert "cannot make image edits" in log.attempts[0].error
    assert len(upstream(emulators, "/images/edits")) == 1


def test_an_edit_falls_back_to_stability_inpainting_with_the_mask_converted_to_luminance(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators, override_params={"model": "gpt-image-1.5"}), stability_target(emulators)],
    }
    image, mask = png(128, 128), mask_png(128, 128)
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.edit(
            image=("a.png", image, "image/png"), mask=("m.png", mask, "image/png"), prompt="a red door"
        )
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert raw.headers["x-portkey-provider"] == "stability-ai"
    sent = emulators.stability.requests[-1]
    assert sent.path == "/v2beta/stable-image/edit/inpaint" and sent.form["prompt"] == "a red door"
    assert sent.files["image"].data == image
    converted = Image.open(io.BytesIO(sent.files["mask"].data))
    # OpenAI's transparent square (repaint) is white for Stability, the opaque rest black.
    assert converted.mode == "L" and converted.size == (128, 128)
    assert converted.getpixel((64, 64)) == 255 and converted.getpixel((2, 2)) == 0


def test_a_variation_falls_back_to_stability_image_to_image(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators, override_params={"model": "dall-e-2"}), stability_target(emulators)],
    }
    image = png(64, 64)
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.create_variation(image=("a.png", image, "image/png"))
    assert raw.parse().data and raw.headers["x-portkey-provider"] == "stability-ai"
    sent = emulators.stability.requests[-1]
    assert sent.path == "/v2beta/stable-image/generate/sd3" and sent.files["image"].data == image
    assert (sent.form["mode"], sent.form["model"], sent.form["strength"]) == ("image-to-image", "sd3.5-large", "0.35")
    assert "prompt=(none)" in raw.headers["x-imagegw-translated"]


def test_an_edit_reaches_gemini_with_the_images_inline_after_a_target_that_cannot_edit(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators, gemini_emulator: Any
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            openai_target(emulators, override_params={"model": "dall-e-3"}),
            {
                "provider": "google",
                "api_key": GEMINI_SECRET,
                "custom_host": gemini_emulator.base_url,
                "override_params": {"model": "gemini-2.5-flash-image"},
            },
        ],
    }
    first, second = png(64, 64), png(32, 32)
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.edit(
            image=[("a.png", first, "image/png"), ("b.png", second, "image/png")], prompt="merge them"
        )
    assert raw.parse().data and raw.headers["x-portkey-provider"] == "google"
    parts = (gemini_emulator.requests[-1].json or {})["contents"][0]["parts"]
    assert parts[0] == {"text": "merge them"}
    assert [base64.b64decode(p["inlineData"]["data"]) for p in parts[1:]] == [first, second]
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert [a.status_code for a in log.attempts] == [400, 200] and "cannot make image edits" in log.attempts[0].error


def test_an_edit_falls_back_to_an_azure_deployment_and_leaves_one_log_record_with_every_attempt(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    azure = {
        "provider": "azure-openai",
        "api_key": AZURE_SECRET,
        "resource_name": "my-resource",
        "deployment_id": "gpt-image",
        "custom_host": emulators.azure.base_url,
        "override_params": {"model": "gpt-image-1"},
    }
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators, override_params={"model": "gpt-image-1.5"}), azure],
    }
    trace_id = f"edit-{uuid.uuid4().hex}"
    image, mask = png(64, 64), mask_png(64, 64)
    with sdk(gateway, key, {**inline(config), "x-portkey-trace-id": trace_id}) as client:
        raw = client.images.with_raw_response.edit(
            image=("a.png", image, "image/png"), mask=("m.png", mask, "image/png"), prompt="a window"
        )
    assert raw.parse().data and raw.headers["x-portkey-provider"] == "azure-openai"
    sent = emulators.azure.requests[-1]
    assert sent.path == "/openai/deployments/gpt-image/images/edits" and sent.query["api-version"]
    assert sent.headers["api-key"] == AZURE_SECRET and sent.files["mask"].data == mask
    records = eventually(lambda: list(admin.iter_logs(trace_id=trace_id)) or None)
    assert len(records) == 1
    assert [(a.provider, a.status_code) for a in records[0].attempts] == [("openai", 500), ("azure-openai", 200)]


def test_the_same_edit_of_the_same_images_is_served_from_the_cache_and_other_images_are_not(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    config = {
        "cache": {"mode": "simple", "max_age": 60},
        **openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
    }
    prompt = f"a hat {uuid.uuid4().hex}"
    image = png(48, 48)
    statuses = []
    with sdk(gateway, key, inline(config)) as client:
        for data in (image, image, png(48, 48, colour=(1, 1, 1))):
            raw = client.images.with_raw_response.edit(image=("a.png", data, "image/png"), prompt=prompt)
            statuses.append(raw.headers["x-portkey-cache-status"])
    assert statuses == ["MISS", "HIT", "MISS"]
    assert len(upstream(emulators, "/images/edits")) == 2


# -- variations ----------------------------------------------------------------------------------------


def test_sdk_create_variation_falls_back_from_a_failing_primary(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    headers = saved_config(
        admin,
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                openai_target(emulators, override_params={"model": "dall-e-2"}),
                openai_target(emulators, override_params={"model": "dall-e-2"}),
            ],
        },
    )
    image = png(64, 64)
    with sdk(gateway, key, headers) as client:
        raw = client.images.with_raw_response.create_variation(
            image=("a.png", image, "image/png"), n=2, size="256x256", response_format="b64_json"
        )
    result = raw.parse()
    assert result.data and len(result.data) == 2
    assert all(base64.b64decode(item.b64_json or "").startswith(PNG_SIGNATURE) for item in result.data)
    calls = upstream(emulators, "/images/variations")
    assert len(calls) == 2 and calls[-1].files["image"].data == image
    assert calls[-1].form == {"model": "dall-e-2", "n": "2", "size": "256x256", "response_format": "b64_json"}
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert log.operation == "variation" and [a.status_code for a in log.attempts] == [503, 200]


def test_a_variation_for_a_model_that_has_none_is_a_400_naming_the_operation_without_a_call(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, inline(openai_target(emulators))) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            client.images.create_variation(image=("a.png", png(64, 64), "image/png"), model="gpt-image-1.5")
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["param"] == "model" and "image variations" in error["message"]
    assert emulators.openai.requests == []


# -- bad input -----------------------------------------------------------------------------------------


def post_edit(
    gateway: GatewayThread, key: str, emulators: Emulators, files: list[tuple[str, Any]], data: dict[str, str]
) -> httpx.Response:
    headers = {"x-portkey-api-key": key, **inline(openai_target(emulators))}
    url = f"{gateway.rest_base_url}/images/edits"
    if files:
        return httpx.post(url, headers=headers, files=files, data=data, timeout=HTTP_TIMEOUT)
    # httpx sends a form without files urlencoded; OpenAI's SDK always sends multipart.
    body = b"".join(
        f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in data.items()
    )
    headers["content-type"] = "multipart/form-data; boundary=b"
    return httpx.post(url, headers=headers, content=body + b"--b--\r\n", timeout=HTTP_TIMEOUT)


@pytest.mark.parametrize(
    ("files", "data", "param"),
    [
        pytest.param(
            [("image", ("a.png", png(64, 64))), ("mask", ("m.png", mask_png(32, 32)))],
            {"prompt": "x", "model": "gpt-image-1.5"},
            "mask",
            id="mask-size-differs",
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64))), ("mask", ("m.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 64))],
            {"prompt": "x", "model": "gpt-image-1.5"},
            "mask",
            id="mask-not-png",
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64))), ("mask", ("m.png", png(64, 64)))],
            {"prompt": "x", "model": "gpt-image-1.5"},
            "mask",
            id="mask-without-alpha",
        ),
        pytest.param(
            [("image[]", (f"{i}.png", png(16, 16))) for i in range(17)],
            {"prompt": "x", "model": "gpt-image-1.5"},
            "image",
            id="seventeen-images",
        ),
        pytest.param([("image", ("a.png", png(64, 64)))], {"model": "gpt-image-1.5"}, "prompt", id="missing-prompt"),
        pytest.param(
            [("image", ("a.png", png(64, 64)))],
            {"prompt": "x", "model": "dall-e-2", "stream": "true"},
            "stream",
            id="stream-on-a-model-that-cannot-stream",
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64)))],
            {"prompt": "x", "model": "gpt-image-1.5", "stream": "true", "partial_images": "4"},
            "partial_images",
            id="partial-images-4",
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64)))],
            {"prompt": "x", "model": "gpt-image-1.5", "stream": "maybe"},
            "stream",
            id="stream-not-a-boolean",
        ),
        pytest.param([("image", ("a.txt", b"not an image"))], {"prompt": "x"}, "image", id="not-an-image"),
        pytest.param([], {"prompt": "x"}, "image", id="no-image"),
    ],
)
def test_bad_edit_input_is_a_400_naming_the_field_before_any_upstream_call(
    gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    files: list[tuple[str, Any]],
    data: dict[str, str],
    param: str,
) -> None:
    response = post_edit(gateway, key, emulators, files, data)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert emulators.openai.requests == []


# -- the limits are settings ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tight_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    """A gateway with small upload limits: 3 images, 20 kB each, 200 kB bodies, a 50 kB upload budget."""
    with running_gateway(
        tmp_path_factory.mktemp("tight-uploads"),
        max_input_images=3,
        max_input_image_bytes=20_000,
        max_body_bytes=200_000,
        upload_memory_bytes=50_000,
    ) as running:
        yield running


def test_upload_limits_are_settings_each_refused_naming_the_field(
    tight_gateway: GatewayThread, emulators: Emulators
) -> None:
    key = tight_gateway.admin_key
    big = noise_png(120, 120)  # about 43 kB
    oversized = post_edit(tight_gateway, key, emulators, [("image", ("a.png", big))], {"prompt": "x"})
    assert oversized.status_code == 400 and oversized.json()["error"]["param"] == "image"
    assert oversized.json()["error"]["code"] == "image_too_large"
    four = [("image[]", (f"{i}.png", png(8, 8))) for i in range(4)]
    too_many = post_edit(tight_gateway, key, emulators, four, {"prompt": "x", "model": "gpt-image-1.5"})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "image"
    body = post_edit(tight_gateway, key, emulators, [("image", ("a.png", noise_png(300, 300)))], {"prompt": "x"})
    assert body.status_code == 413
    assert emulators.openai.requests == []


def test_an_upload_larger_than_the_budget_is_still_served(tight_gateway: GatewayThread, emulators: Emulators) -> None:
    files = [("image[]", (f"{i}.png", noise_png(60, 60))) for i in range(3)]  # three of about 11 kB: 33 kB in all
    data = {"prompt": "x", "model": "gpt-image-1.5"}
    answers = [post_edit(tight_gateway, tight_gateway.admin_key, emulators, files, data) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
