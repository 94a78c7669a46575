"""The seed cookbook, run with the real ``openai`` and ``portkey-ai`` packages against the shim.

Only ``base_url`` differs from the cookbook's code; the providers are the local emulators.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import pytest
from openai import OpenAI
from PIL import Image
from portkey_ai import createHeaders

from imagegateway import ImageGatewayClient
from imagegateway_server.cli import main as imagegw
from tests.conftest import Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread


def stability_client(gateway: GatewayThread, seed: Seed) -> OpenAI:
    return OpenAI(
        api_key="REDUNDANT",
        base_url=gateway.rest_base_url,
        default_headers=createHeaders(provider="stabilityai", api_key=gateway.admin_key, virtual_key=seed.stability_vk),
    )


def config_client(gateway: GatewayThread, seed: Seed) -> OpenAI:
    return OpenAI(
        api_key="REDUNDANT",
        base_url=gateway.rest_base_url,
        default_headers=createHeaders(api_key=gateway.admin_key, config=seed.config_id),
    )


def test_cookbook_step_2_calls_stability_through_the_openai_sdk(
    gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    client = stability_client(gateway, seed)
    image = client.images.generate(
        model="stable-diffusion-v1-6",
        prompt="Kraken in the milkyway galaxy",
        n=1,
        size="1024x1024",
        response_format="b64_json",
    )
    picture = Image.open(io.BytesIO(base64.b64decode(image.data[0].b64_json or "")))
    assert picture.format == "PNG" and picture.size == (1024, 1024)
    sent = emulators.stability.requests[-1]
    assert sent.path == "/v1/generation/stable-diffusion-v1-6/text-to-image"
    assert sent.headers["authorization"] == "Bearer " + "sk-test-stability-0123456789abcdef"


def test_cookbook_step_4_falls_back_to_dalle3_without_code_changes(
    gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(500))
    client = config_client(gateway, seed)
    raw = client.images.with_raw_response.generate(
        model="stable-diffusion-v1-6",
        prompt="Harry Potter travelling the world using Portkey",
        n=1,
        size="1024x1024",
        response_format="b64_json",
    )
    image = raw.parse()
    assert Image.open(io.BytesIO(base64.b64decode(image.data[0].b64_json or ""))).format == "PNG"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert raw.headers["x-portkey-provider"] == "openai"
    assert emulators.openai.requests[-1].json is not None
    assert emulators.openai.requests[-1].json["model"] == "dall-e-3"

    trace_id = raw.headers["x-portkey-trace-id"]
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        logs = eventually(lambda: admin.list_logs(trace_id=trace_id).logs)
    (entry,) = logs
    assert entry.fallback_used and entry.served_target == "config.targets[1]"
    assert [(a.provider, a.model, a.status_code) for a in entry.attempts] == [
        ("stability-ai", "stable-diffusion-v1-6", 500),
        ("openai", "dall-e-3", 200),
    ]


def test_cookbook_config_serves_from_stability_when_it_is_healthy(
    gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    raw = config_client(gateway, seed).images.with_raw_response.generate(
        model="stable-diffusion-v1-6", prompt="a lighthouse", n=1, size="1024x1024", response_format="b64_json"
    )
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[0]"
    assert raw.headers["x-portkey-provider"] == "stability-ai"
    assert not emulators.openai.requests


def test_grpc_and_rest_return_the_same_image_for_the_same_request(
    gateway: GatewayThread, seed: Seed, emulators: Emulators
) -> None:
    rest = config_client(gateway, seed).images.generate(
        model="stable-diffusion-v1-6", prompt="same", n=1, size="1024x1024", response_format="b64_json"
    )
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as client:
        grpc_response = client.generate_image(
            prompt="same", model="stable-diffusion-v1-6", size="1024x1024", config_id=seed.config_id
        )
    rest_bytes = base64.b64decode(rest.data[0].b64_json or "")
    (image,) = grpc_response.images
    assert hashlib.sha256(image.data).digest() == hashlib.sha256(rest_bytes).digest()
    assert (image.mime_type, image.width, image.height) == ("image/png", 1024, 1024)


def test_cli_generate_writes_the_fallback_image_and_logs_show_it(
    gateway: GatewayThread, seed: Seed, emulators: Emulators, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulators.stability.inject(Fault.reset())
    out = tmp_path / "image.png"
    common = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key]
    assert imagegw(["generate", *common, "--config", seed.config_id, "--prompt", "a kraken", "--out", str(out)]) in (
        0,
        None,
    )
    assert out.read_bytes().startswith(b"\x89PNG")
    printed = capsys.readouterr().out
    assert "openai" in printed and "config.targets[1]" in printed

    assert imagegw(["logs", "list", *common, "-o", "json", "--limit", "5"]) in (0, None)
    assert "fallback_used" in capsys.readouterr().out
