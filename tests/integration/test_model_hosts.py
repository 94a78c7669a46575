"""Together, Fireworks, xAI and Recraft through the gateway over real sockets: the OpenAI SDK, gRPC, fallbacks.

The session's gateway reaches each model-host emulator by ``custom_host`` (or a virtual key's base
URL), as it would the real API. A chain that starts on Together and meets its 429 falls back to
OpenAI; a content filter anywhere moves the chain on; what each image came from travels with it.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from imagegateway import ImageGatewayClient, ImageGatewayError
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.emulators import Emulator, Fault
from tests.gateway_sdk import PNG_SIGNATURE, sdk, unique
from tests.harness import GatewayThread
from tests.model_host_emulators import (
    FIREWORKS_SECRET,
    RECRAFT_SECRET,
    TOGETHER_SECRET,
    XAI_SECRET,
    Hosts,
    host_emulators,
    hosts,
)

__all__ = ["host_emulators", "hosts"]

JPEG_SIGNATURE = b"\xff\xd8\xff"
SCHNELL = "black-forest-labs/FLUX.1-schnell"


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"hosts-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture
def both(emulators: Emulators, hosts: Hosts) -> Iterator[tuple[Emulators, Hosts]]:
    yield emulators, hosts


def target(provider: str, emulator: Emulator, secret: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "api_key": secret, "custom_host": emulator.base_url, **extra}


def together_then_openai(hosts: Hosts, emulators: Emulators) -> dict[str, Any]:
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            target("together-ai", hosts.together, TOGETHER_SECRET, override_params={"model": SCHNELL}),
            target("openai", emulators.openai, OPENAI_SECRET, override_params={"model": "dall-e-3"}),
        ],
    }


def test_a_429_on_together_falls_back_to_openai_through_the_sdk(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, both: tuple[Emulators, Hosts]
) -> None:
    emulators, hosts = both
    hosts.together.inject(Fault.rate_limited(retry_after=1))
    trace_id = unique("together-429")
    config = json.dumps(together_then_openai(hosts, emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config, "x-portkey-trace-id": trace_id}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="b64_json")
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert raw.headers["x-portkey-provider"] == "openai"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    (sent,) = hosts.together.requests
    assert sent.headers["authorization"] == f"Bearer {TOGETHER_SECRET}" and sent.json is not None
    assert sent.json["model"] == SCHNELL and sent.json["response_format"] == "base64"
    logs = eventually(lambda: (page := admin.list_logs(trace_id=trace_id, page_size=10)).logs and page)
    attempts = [(a.provider, a.status_code) for a in logs.logs[0].attempts]
    assert attempts == [("together-ai", 429), ("openai", 200)]


def test_the_same_chain_falls_back_over_grpc(admin: ImageGatewayClient, both: tuple[Emulators, Hosts]) -> None:
    emulators, hosts = both
    hosts.together.inject(Fault.rate_limited())
    response = admin.generate_image(prompt="a lighthouse", config=together_then_openai(hosts, emulators))
    outcome = response.outcome
    assert (outcome.provider, outcome.model, outcome.fallback_used) == ("openai", "dall-e-3", True)
    assert [(a.provider, a.status_code) for a in outcome.attempts] == [("together-ai", 429), ("openai", 200)]
    assert response.images[0].provider == "openai"
    # Without the 429, Together serves, and says what made the image.
    response = admin.generate_image(
        prompt="a lighthouse", size="1792x1024", config=together_then_openai(hosts, emulators)
    )
    image = response.images[0]
    assert (image.provider, image.model, image.size) == ("together-ai", SCHNELL, "1792x1024")
    assert image.data.startswith(JPEG_SIGNATURE) and (image.width, image.height) == (1792, 1024)


@pytest.mark.parametrize(
    ("provider", "emulator", "secret", "model", "size", "served_size", "translated"),
    [
        ("together-ai", "together", TOGETHER_SECRET, "black-forest-labs/FLUX.1-dev", "1000x1000", "1008x1008", True),
        ("fireworks-ai", "fireworks", FIREWORKS_SECRET, "flux-1-dev-fp8", "1024x1024", "1024x1024", False),
        ("x-ai", "xai", XAI_SECRET, "grok-imagine-image", "1792x1024", "", True),
        ("recraft-ai", "recraft", RECRAFT_SECRET, "recraftv3", "1792x1024", "1820x1024", True),
    ],
)
def test_each_host_serves_a_virtual_key_through_the_sdk(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    generate_key: str,
    hosts: Hosts,
    provider: str,
    emulator: str,
    secret: str,
    model: str,
    size: str,
    served_size: str,
    translated: bool,
) -> None:
    emu: Emulator = getattr(hosts, emulator)
    vk = admin.create_virtual_key(unique(emulator), provider, secret, base_url=emu.base_url)
    with sdk(gateway, generate_key, **{"x-portkey-virtual-key": vk.id}) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a lighthouse",
            model=model,
            size=size,
            response_format="b64_json",  # type: ignore[arg-type]
        )
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "")[:3] in (PNG_SIGNATURE[:3], JPEG_SIGNATURE)
    assert raw.headers["x-portkey-provider"] == provider and raw.headers["x-imagegw-model"] == model
    if served_size:
        assert raw.headers["x-imagegw-size"] == served_size
    assert ("x-imagegw-translated" in raw.headers) is translated
    assert float(raw.headers["x-imagegw-cost-usd"]) > 0
    assert emu.requests[-1].headers["authorization"] == f"Bearer {secret}"


def test_a_content_filter_moves_the_chain_on_and_bytes_hosts_answer_url_requests_with_data_urls(
    gateway: GatewayThread, generate_key: str, hosts: Hosts
) -> None:
    hosts.fireworks.inject(Fault.content_filter())
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            target("fireworks-ai", hosts.fireworks, FIREWORKS_SECRET),
            target("fireworks-ai", hosts.fireworks, FIREWORKS_SECRET),
        ],
    }
    with sdk(gateway, generate_key, **{"x-portkey-config": json.dumps(config)}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="url")
    result = raw.parse()
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert (result.data[0].url or "").startswith("data:image/png;base64,")
    assert len(hosts.fireworks.requests) == 2


def test_url_answers_of_url_hosts_are_handed_on(gateway: GatewayThread, generate_key: str, hosts: Hosts) -> None:
    config = json.dumps(target("recraft-ai", hosts.recraft, RECRAFT_SECRET))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        result = client.images.generate(prompt="a lighthouse", response_format="url")
    assert (result.data[0].url or "").startswith(hosts.recraft.origin)


def test_what_xai_refuses_is_a_400_naming_the_parameter(
    gateway: GatewayThread, generate_key: str, hosts: Hosts
) -> None:
    config = json.dumps(target("x-ai", hosts.xai, XAI_SECRET))
    with (
        sdk(gateway, generate_key, **{"x-portkey-config": config}) as client,
        pytest.raises(openai.BadRequestError) as refused,
    ):
        client.images.generate(prompt="a lighthouse", style="vivid")
    assert refused.value.status_code == 400
    error = refused.value.body
    assert isinstance(error, dict) and error.get("param") == "style"
    assert hosts.xai.requests == []


def test_a_wrong_xai_key_is_an_authentication_failure_over_grpc(admin: ImageGatewayClient, hosts: Hosts) -> None:
    with pytest.raises(ImageGatewayError) as refused:
        admin.generate_image(prompt="a kite", config=target("x-ai", hosts.xai, "xai-wrong-key-000111222333"))
    assert "xai-wrong-key-000111222333" not in str(refused.value)
    assert refused.value.error_info is not None and "AUTH" in refused.value.error_info.reason.upper()


def test_an_openai_compatible_server_gets_an_unknown_model_untranslated(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, emulators: Emulators
) -> None:
    png = base64.b64encode(PNG_SIGNATURE + b"\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x02\x00\x00\x00")
    emulators.openai.inject(Fault.status(200, {"created": 1, "data": [{"b64_json": png.decode()}]}))
    trace_id = unique("compatible")
    config = json.dumps({**target("openai", emulators.openai, OPENAI_SECRET), "override_params": {"seed": 9}})
    with sdk(gateway, generate_key, **{"x-portkey-config": config, "x-portkey-trace-id": trace_id}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", model="sdxl-lightning")
    note = "model=sdxl-lightning passed through untranslated to a custom host"
    assert raw.headers["x-imagegw-translated"] == note
    sent = emulators.openai.requests[-1].json
    assert sent is not None and (sent["model"], sent["seed"]) == ("sdxl-lightning", 9)
    logs = eventually(lambda: (page := admin.list_logs(trace_id=trace_id, page_size=10)).logs and page)
    assert any(note in attempt.translations for attempt in logs.logs[0].attempts)


def test_a_kontext_task_that_outlives_its_request_timeout_falls_back_to_together(
    admin: ImageGatewayClient, hosts: Hosts
) -> None:
    hosts.fireworks.kontext_pending_polls = None  # the task never finishes
    kontext = {"model": "flux-kontext-pro"}
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            target("fireworks-ai", hosts.fireworks, FIREWORKS_SECRET, request_timeout=1500, override_params=kontext),
            target("together-ai", hosts.together, TOGETHER_SECRET, override_params={"model": SCHNELL}),
        ],
    }
    response = admin.generate_image(prompt="a lighthouse", config=config)
    attempts = [(a.provider, a.model, a.status_code) for a in response.outcome.attempts]
    assert attempts == [("fireworks-ai", "flux-kontext-pro", 408), ("together-ai", SCHNELL, 200)]
    assert response.images[0].provider == "together-ai"
    submits = [r for r in hosts.fireworks.requests if not r.path.endswith("get_result")]
    assert len(submits) == 1 and len(hosts.fireworks.requests) >= 2  # submitted once, polled until the deadline
    # Served by Kontext when the task finishes.
    hosts.fireworks.kontext_pending_polls = 1
    response = admin.generate_image(prompt="a lighthouse", size="1024x1024", config=config)
    image = response.images[0]
    assert (image.provider, image.model, image.size) == ("fireworks-ai", "flux-kontext-pro", "1024x1024")
