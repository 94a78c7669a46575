"""Edits and variations over gRPC: the generated stubs, the Python clients (one message and chunked)
and the ``imagegw edit`` / ``imagegw vary`` commands, through a saved fallback config whose primary fails."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest

from imagegateway import AsyncImageGatewayClient, ImageGatewayClient
from imagegateway.errors import InvalidArgumentError
from imagegateway.v1 import images_pb2, service_pb2_grpc
from imagegateway_server.cli import main as imagegw
from tests.conftest import OPENAI_SECRET, Emulators
from tests.emulators import Fault
from tests.harness import GatewayThread
from tests.image_fixtures import mask_png, noise_png, openai_target, png
from tests.integration.test_image_edits import log_of

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


TIMEOUT = 30.0


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"grpc-edits-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture
def fallback_config(admin: ImageGatewayClient, emulators: Emulators) -> str:
    """A saved config: gpt-image-1.5 (failing first), then gpt-image-2."""
    emulators.openai.inject(Fault.status(500))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
            openai_target(emulators, override_params={"model": "gpt-image-2"}),
        ],
    }
    return admin.create_config(f"grpc-edits-{uuid.uuid4().hex[:8]}", config).id


def edits_sent(emulators: Emulators) -> list[Any]:
    return [r for r in emulators.openai.requests if r.path.endswith("/images/edits")]


def test_stub_edit_image_with_two_images_and_a_mask_falls_back(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators, fallback_config: str
) -> None:
    first, second, mask = png(64, 64), png(64, 64, colour=(1, 2, 3)), mask_png(64, 64)
    request = images_pb2.EditImageRequest(
        parameters=images_pb2.ImageParameters(prompt="add a moon", input_fidelity="low"),
        routing=images_pb2.Routing(config_id=fallback_config),
        images=[images_pb2.InputImage(data=first, filename="a.png"), images_pb2.InputImage(data=second)],
        mask=images_pb2.InputImage(data=mask),
    )
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        response = service_pb2_grpc.ImageGatewayStub(channel).EditImage(
            request, metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT
        )
    assert response.images and response.images[0].data.startswith(PNG_SIGNATURE)
    assert response.outcome.fallback_used and [a.status_code for a in response.outcome.attempts] == [500, 200]
    assert response.report.usage.input_image_tokens > 0
    sent = edits_sent(emulators)[-1]
    assert [part.data for _, part in sent.file_parts] == [first, second, mask]
    assert sent.form["input_fidelity"] == "low" and sent.file_parts[0][1].filename == "a.png"
    log = log_of(admin, response.outcome.log_id)
    assert log.operation == "edit" and len(log.attempts) == 2
    assert [image.sha256 for image in log.input_images] == [hashlib.sha256(d).hexdigest() for d in (first, second)]


def test_stub_create_image_variation_falls_back(
    gateway: GatewayThread, key: str, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators, override_params={"model": "dall-e-2"})] * 2,
    }
    config_id = admin.create_config(f"grpc-vary-{uuid.uuid4().hex[:8]}", config).id
    request = images_pb2.CreateImageVariationRequest(
        parameters=images_pb2.ImageParameters(n=2, size="512x512"),
        routing=images_pb2.Routing(config_id=config_id),
        image=images_pb2.InputImage(data=png(64, 64)),
    )
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        response = service_pb2_grpc.ImageGatewayStub(channel).CreateImageVariation(
            request, metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT
        )
    assert len(response.images) == 2 and all(i.width == 512 for i in response.images)
    assert [a.status_code for a in response.outcome.attempts] == [503, 200]


def test_client_edit_sends_large_inputs_chunked_and_small_ones_in_one_message(
    gateway: GatewayThread, key: str, emulators: Emulators, fallback_config: str
) -> None:
    images = [("a.png", noise_png(64, 64)), ("b.png", noise_png(64, 64))]
    mask = mask_png(64, 64)
    # Two 12 KiB inputs are over half a 16 KiB message limit, so the client sends them in chunks.
    with ImageGatewayClient(gateway.grpc_target, api_key=key, max_message_bytes=16 * 1024) as client:
        chunked = client.edit_image(images, mask=mask, prompt="a boat", config_id=fallback_config)
    assert chunked.images and chunked.outcome.fallback_used
    sent = edits_sent(emulators)[-1]
    assert [part.data for _, part in sent.file_parts] == [images[0][1], images[1][1], mask]
    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        whole = client.edit_image(images, prompt="a boat", config_id=fallback_config, chunked=False)
    assert whole.images and whole.images[0].data.startswith(PNG_SIGNATURE)


def test_async_client_edits_chunked_and_makes_variations(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    async def run() -> tuple[images_pb2.EditImageResponse, images_pb2.CreateImageVariationResponse]:
        async with AsyncImageGatewayClient(gateway.grpc_target, api_key=key) as client:
            edit = await client.edit_image(
                [png(64, 64)],
                prompt="a kite",
                config=openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
                chunked=True,
            )
            vary = await client.create_image_variation(
                png(64, 64), config=openai_target(emulators, override_params={"model": "dall-e-2"})
            )
            return edit, vary

    edit, vary = asyncio.run(run())
    assert edit.images and vary.images and vary.outcome.model == "dall-e-2"


def test_bad_grpc_inputs_are_invalid_argument_naming_the_field(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    config = openai_target(emulators, override_params={"model": "gpt-image-1.5"})
    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        with pytest.raises(InvalidArgumentError) as mask_size:
            client.edit_image([png(64, 64)], mask=mask_png(32, 32), prompt="x", config=config)
        with pytest.raises(InvalidArgumentError) as too_many:
            client.edit_image([png(16, 16)] * 17, prompt="x", config=config, chunked=True)
        with pytest.raises(InvalidArgumentError) as no_prompt:
            client.edit_image([png(16, 16)], config=config)
        with pytest.raises(InvalidArgumentError) as no_variations:
            client.create_image_variation(png(64, 64), config=config)
    assert "mask" in str(mask_size.value) and "image_count" in str(too_many.value)
    assert "prompt" in str(no_prompt.value) and "image variations" in str(no_variations.value)
    assert emulators.openai.requests == []


def test_cli_edit_and_vary_write_the_results(
    gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    fallback_config: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "a.png").write_bytes(png(64, 64))
    (tmp_path / "b.png").write_bytes(png(64, 64, colour=(0, 0, 255)))
    (tmp_path / "m.png").write_bytes(mask_png(64, 64))
    client_flags = ["--server", gateway.grpc_target, "--api-key", key]
    capsys.readouterr()
    code = imagegw(
        [
            "edit",
            *client_flags,
            "--image",
            str(tmp_path / "a.png"),
            "--image",
            str(tmp_path / "b.png"),
            "--mask",
            str(tmp_path / "m.png"),
            "--prompt",
            "a sail",
            "--config",
            fallback_config,
            "--out",
            str(tmp_path / "edited.png"),
            "-o",
            "json",
        ]
    )
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["files"] == [str(tmp_path / "edited.png")]
    assert (tmp_path / "edited.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [name for name, _ in edits_sent(emulators)[-1].file_parts] == ["image[]", "image[]", "mask"]
    emulators.openai.reset()
    vk = f"vary-{uuid.uuid4().hex[:6]}"
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin_client:
        admin_client.create_virtual_key(vk, "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
    code = imagegw(
        [
            "vary",
            *client_flags,
            "--image",
            str(tmp_path / "a.png"),
            "--virtual-key",
            vk,
            "--model",
            "dall-e-2",
            "-n",
            "2",
            "--out",
            str(tmp_path / "vary.png"),
        ]
    )
    assert code == 0
    assert (tmp_path / "vary-1.png").exists() and (tmp_path / "vary-2.png").exists()
