"""Edits and variations reaching the providers mapped last, through the REST shim with the OpenAI SDK
and over gRPC: Bedrock Nova Canvas and Titan v2 inpainting and image variation, FLUX Kontext on BFL,
and OpenAI's ``markup``.

Each runs through a fallback chain whose first target cannot serve it, over real sockets to the
emulators (Bedrock verifies SigV4 and Nova's and Titan's bodies; BFL is polled; OpenAI checks the
markup file).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from PIL import Image

from imagegateway import AsyncImageGatewayClient, ImageGatewayClient
from imagegateway.errors import InvalidArgumentError
from imagegateway_server.cli import main as imagegw
from tests.conftest import (
    BEDROCK_ACCESS_KEY_ID,
    BEDROCK_REGION,
    BEDROCK_SECRET_ACCESS_KEY,
    OPENAI_SECRET,
    Emulators,
)
from tests.emulators import BedrockEmulator, BFLEmulator
from tests.harness import GatewayThread
from tests.image_fixtures import mask_png, openai_target, png
from tests.integration.test_image_edits import inline, log_of, post_edit, sdk, upstream

BFL_SECRET = "bfl-test-key-0123456789abcdef"
NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"edit-maps-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture(scope="module")
def bfl() -> Iterator[BFLEmulator]:
    with BFLEmulator.running_in_thread(api_key=BFL_SECRET, job_seconds=0.1) as emulator:
        yield emulator


def bedrock_target(emulator: BedrockEmulator, model: str) -> dict[str, Any]:
    return {
        "provider": "bedrock",
        "aws_access_key_id": BEDROCK_ACCESS_KEY_ID,
        "aws_secret_access_key": BEDROCK_SECRET_ACCESS_KEY,
        "aws_region": BEDROCK_REGION,
        "custom_host": emulator.base_url,
        "override_params": {"model": model},
    }


def overlay(width: int, height: int) -> bytes:
    """A markup: transparent, with a red ring drawn where the edit goes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (10, 10, 20, 20))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _after_a_model_that_cannot_edit(bedrock_emulator: BedrockEmulator, model: str) -> dict[str, object]:
    """A fallback whose first target (Stable Diffusion 3.5 on Bedrock) cannot edit, then ``model``."""
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            bedrock_target(bedrock_emulator, "stability.sd3-5-large-v1:0"),
            bedrock_target(bedrock_emulator, model),
        ],
    }


def _black_where_to_edit(body: dict[str, Any], *, inside: tuple[int, int]) -> bool:
    """Whether the inpainting mask sent is black at ``inside`` (the area to edit) and white in a corner."""
    mask = Image.open(io.BytesIO(base64.b64decode(body["inPaintingParams"]["maskImage"]))).convert("RGB")
    return mask.getpixel(inside) == (0, 0, 0) and mask.getpixel((2, 2)) == (255, 255, 255)


def _masked_edit(gateway: GatewayThread, key: str, config: dict[str, Any], side: int, **fields: Any) -> Any:
    """The OpenAI SDK's edit of a square PNG under a mask through ``config``, as its raw response."""
    with sdk(gateway, key, inline(config)) as client:
        return client.images.with_raw_response.edit(
            image=("a.png", png(side, side), "image/png"),
            mask=("m.png", mask_png(side, side), "image/png"),
            prompt="a door",
            **fields,
        )


def test_an_edit_with_a_mask_falls_back_to_nova_canvas_inpainting_with_the_mask_black_where_to_edit(
    gateway: GatewayThread,
    key: str,
    admin: ImageGatewayClient,
    emulators: Emulators,
    bedrock_emulator: BedrockEmulator,
) -> None:
    raw = _masked_edit(gateway, key, _after_a_model_that_cannot_edit(bedrock_emulator, NOVA), 512)
    assert raw.parse().data and raw.headers["x-portkey-provider"] == "bedrock"
    body = bedrock_emulator.requests[-1].json or {}
    assert body["taskType"] == "INPAINTING"
    assert _black_where_to_edit(body, inside=(256, 256))
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert [a.status_code for a in log.attempts] == [400, 200]
    assert "cannot make image edits" in log.attempts[0].error


def test_a_variation_falls_back_to_titan_image_variation(
    gateway: GatewayThread, key: str, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            openai_target(emulators, override_params={"model": "dall-e-3"}),
            bedrock_target(bedrock_emulator, TITAN),
        ],
    }
    with sdk(gateway, key, inline(config)) as client:
        result = client.images.create_variation(
            image=("a.png", png(512, 512), "image/png"), n=2, extra_body={"similarity_strength": 0.4}
        )
        # OpenAI's own parameters that the variation form does not have stay refused, naming them.
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.create_variation(image=("a.png", png(512, 512), "image/png"), extra_body={"quality": "hd"})
    assert len(result.data) == 2
    body = bedrock_emulator.requests[-1].json or {}
    assert body["taskType"] == "IMAGE_VARIATION" and len(body["imageVariationParams"]["images"]) == 1
    assert body["imageVariationParams"]["similarityStrength"] == 0.4
    assert emulators.openai.requests == []
    assert refused.value.body["param"] == "quality"  # type: ignore[index]


def test_an_edit_with_a_mask_falls_back_to_titan_inpainting_over_rest(
    gateway: GatewayThread,
    key: str,
    admin: ImageGatewayClient,
    bedrock_emulator: BedrockEmulator,
) -> None:
    config = _after_a_model_that_cannot_edit(bedrock_emulator, TITAN)
    raw = _masked_edit(gateway, key, config, 768, n=2, response_format="b64_json")
    result = raw.parse()
    assert result.data and len(result.data) == 2
    assert raw.headers["x-portkey-provider"] == "bedrock"
    answered = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json or "")))
    assert answered.size == (768, 768)  # an inpainting has the input image's size
    call = bedrock_emulator.requests[-1]
    assert "amazon.titan-image-generator-v2%3A0" in call.path
    body = call.json or {}
    assert body["taskType"] == "INPAINTING" and body["inPaintingParams"]["text"] == "a door"
    assert _black_where_to_edit(body, inside=(384, 384))
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert [a.status_code for a in log.attempts] == [400, 200]


def test_an_image_titan_cannot_edit_is_a_400_naming_it_before_any_call_over_rest(
    gateway: GatewayThread, key: str, bedrock_emulator: BedrockEmulator
) -> None:
    calls = len(bedrock_emulator.requests)
    with sdk(gateway, key, inline(bedrock_target(bedrock_emulator, TITAN))) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            client.images.edit(
                image=("a.png", png(1536, 768), "image/png"),
                mask=("m.png", mask_png(1536, 768), "image/png"),
                prompt="a door",
            )
    assert refused.value.body["param"] == "image"  # type: ignore[index]
    assert "1408" in str(refused.value)
    assert len(bedrock_emulator.requests) == calls


def test_grpc_edit_image_reaches_titan_inpainting_and_strict_mode_refuses_an_edit_without_a_mask(
    gateway: GatewayThread, key: str, bedrock_emulator: BedrockEmulator
) -> None:
    titan = bedrock_target(bedrock_emulator, TITAN)
    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        edited = client.edit_image([png(512, 512)], mask=mask_png(512, 512), prompt="a window", config=titan)
        body = bedrock_emulator.requests[-1].json or {}
        assert body["taskType"] == "INPAINTING" and "maskImage" in body["inPaintingParams"]
        assert edited.images and edited.outcome.model == TITAN
        # Without a mask Titan restyles the image by the prompt (a variation); strict mode refuses that.
        varied = client.edit_image([png(512, 512)], prompt="a window", config=titan)
        assert (bedrock_emulator.requests[-1].json or {})["taskType"] == "IMAGE_VARIATION"
        assert varied.images
        calls = len(bedrock_emulator.requests)
        with pytest.raises(InvalidArgumentError) as strict:
            client.edit_image([png(512, 512)], prompt="a window", config={**titan, "strict": True})
    assert "mask" in str(strict.value) and "strict" in str(strict.value)
    assert len(bedrock_emulator.requests) == calls


def test_an_edit_reaches_flux_kontext_with_the_images_as_input_image_fields(
    gateway: GatewayThread, key: str, emulators: Emulators, bfl: BFLEmulator
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            openai_target(emulators, override_params={"model": "dall-e-3"}),
            {
                "provider": "bfl",
                "api_key": BFL_SECRET,
                "custom_host": bfl.base_url,
                "override_params": {"model": "flux-kontext-pro"},
            },
        ],
    }
    first, second = png(64, 64), png(64, 64, colour=(0, 0, 255))
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.edit(
            image=[("a.png", first, "image/png"), ("b.png", second, "image/png")], prompt="swap the colours"
        )
    assert raw.parse().data and raw.headers["x-portkey-provider"] == "black-forest-labs"
    (submit,) = [r for r in bfl.requests if r.method == "POST"]
    body = submit.json or {}
    assert body["prompt"] == "swap the colours"
    assert [base64.b64decode(body[name]) for name in ("input_image", "input_image_2")] == [first, second]


def test_markup_reaches_a_model_that_takes_it_after_one_that_refuses_it(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            openai_target(emulators, override_params={"model": "gpt-image-2"}),
            openai_target(emulators, override_params={"model": "gpt-image-2.5-flare"}),
        ],
    }
    image, markup = png(64, 64), overlay(64, 64)
    with sdk(gateway, key, inline(config)) as client:
        raw = client.images.with_raw_response.edit(
            image=("a.png", image, "image/png"),
            markup=("mark.png", markup, "image/png"),
            prompt="make the circled cup blue",
        )
    assert raw.parse().data
    (sent,) = upstream(emulators, "/images/edits")  # gpt-image-2 refused it before any call
    assert sent.form["model"] == "gpt-image-2.5-flare"
    assert [(name, part.data) for name, part in sent.file_parts] == [("image", image), ("markup", markup)]
    log = log_of(admin, raw.headers["x-imagegw-log-id"])
    assert [a.status_code for a in log.attempts] == [400, 200] and "markup" in log.attempts[0].error
    assert log.input_markup.sha256 == hashlib.sha256(markup).hexdigest()
    assert log.input_markup.bytes == len(markup)


@pytest.mark.parametrize(
    ("files", "why"),
    [
        pytest.param(
            [
                ("image", ("a.png", png(64, 64))),
                ("mask", ("m.png", mask_png(64, 64))),
                ("markup", ("k.png", overlay(64, 64))),
            ],
            "combined with mask",
            id="markup-with-mask",
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64))), ("markup", ("k.png", overlay(32, 32)))], "same size", id="markup-size"
        ),
        pytest.param(
            [("image", ("a.png", png(64, 64))), ("markup", ("k.png", png(64, 64)))], "alpha", id="markup-opaque"
        ),
    ],
)
def test_bad_markup_is_a_400_naming_it_before_any_upstream_call(
    gateway: GatewayThread, key: str, emulators: Emulators, files: list[tuple[str, Any]], why: str
) -> None:
    response = post_edit(gateway, key, emulators, files, {"prompt": "x", "model": "gpt-image-2.5-flare"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == "markup" and why in error["message"]
    assert emulators.openai.requests == []


# -- markup over gRPC: the stubs' EditImage, the clients (one message and chunked) and the CLI -------------


def markup_config(emulators: Emulators) -> dict[str, Any]:
    return openai_target(emulators, override_params={"model": "gpt-image-2.5-flare"})


def markup_sent(emulators: Emulators) -> bytes:
    (sent,) = upstream(emulators, "/images/edits")
    parts = {name: part.data for name, part in sent.file_parts}
    return parts["markup"]


@pytest.mark.parametrize("chunked", [False, True])
def test_the_clients_send_the_markup_in_one_message_or_chunked(
    gateway: GatewayThread, key: str, emulators: Emulators, chunked: bool
) -> None:
    image, markup = png(64, 64), overlay(64, 64)

    async def run() -> Any:
        async with AsyncImageGatewayClient(gateway.grpc_target, api_key=key) as client:
            return await client.edit_image(
                [image], markup=markup, prompt="circle it", config=markup_config(emulators), chunked=chunked
            )

    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        edited = client.edit_image(
            [image], markup=("mark.png", markup), prompt="circle it", config=markup_config(emulators), chunked=chunked
        )
    assert edited.images and markup_sent(emulators) == markup
    emulators.openai.reset()
    assert asyncio.run(run()).images and markup_sent(emulators) == markup


def test_a_streamed_edit_carries_the_markup_from_both_clients(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    image, markup = png(64, 64), overlay(64, 64)

    async def run() -> list[Any]:
        async with AsyncImageGatewayClient(gateway.grpc_target, api_key=key) as client:
            stream = client.edit_events(
                [image], markup=markup, partial_images=1, prompt="circle it", config=markup_config(emulators)
            )
            return [event async for event in stream]

    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        events = list(
            client.edit_events(
                [image], markup=markup, partial_images=1, prompt="circle it", config=markup_config(emulators)
            )
        )
    assert [type(e).__name__ for e in events][-1] == "FinalImage" and markup_sent(emulators) == markup
    (sent,) = upstream(emulators, "/images/edits")
    assert sent.form["stream"] == "true"
    emulators.openai.reset()
    assert type(asyncio.run(run())[-1]).__name__ == "FinalImage" and markup_sent(emulators) == markup


def test_cli_edit_takes_a_markup_file(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators, tmp_path: Path
) -> None:
    (tmp_path / "a.png").write_bytes(png(64, 64))
    (tmp_path / "k.png").write_bytes(overlay(64, 64))
    vk = admin.create_virtual_key(
        f"markup-{uuid.uuid4().hex[:6]}", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url
    ).id
    code = imagegw(
        [
            "edit",
            "--server",
            gateway.grpc_target,
            "--api-key",
            key,
            "--image",
            str(tmp_path / "a.png"),
            "--markup",
            str(tmp_path / "k.png"),
            "--prompt",
            "circle it",
            "--virtual-key",
            vk,
            "--model",
            "gpt-image-2.5-flare",
            "--out",
            str(tmp_path / "edited.png"),
        ]
    )
    assert code == 0 and (tmp_path / "edited.png").exists()
    assert markup_sent(emulators) == overlay(64, 64)
