"""The model hosts' keys never leave the gateway: not in answers, errors, request logs, metrics or process logs.

One gateway (in a thread, every logger captured at DEBUG) serves Together, Fireworks, xAI and Recraft
through virtual keys, inline configs and Portkey's bare-provider headers, while each emulator echoes
the key it was sent back in its error bodies (xAI's 400, Recraft's plain-text 401, Fireworks' gateway
fault, Together's envelope). Everything the gateway said is then searched for every key, whole and in
telling fragments (``tests/leak_scan.py``'s transcript and fragments).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator

import httpx
import pytest

from imagegateway import ImageGatewayClient
from tests.emulators import Emulator, Fault, FireworksEmulator, RecraftEmulator, TogetherEmulator, XAIEmulator
from tests.harness import GatewayThread, running_gateway
from tests.leak_scan import TIMEOUT, Transcript

# Not shaped like "sk-...": only exact-secret scrubbing can hide these.
KEYS = {
    "together-ai": "together" + secrets.token_urlsafe(24),
    "fireworks-ai": "fireworks" + secrets.token_urlsafe(24),
    "x-ai": "xai" + secrets.token_urlsafe(24),
    "recraft-ai": "recraft" + secrets.token_urlsafe(24),
}
BARE = "bare" + secrets.token_urlsafe(24)
MODELS = {
    "together-ai": "black-forest-labs/FLUX.1-schnell",
    "fireworks-ai": "flux-1-schnell-fp8",
    "x-ai": "grok-imagine-image",
    "recraft-ai": "recraftv4_1",
}


@pytest.fixture(scope="module")
def leaky_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(tmp_path_factory.mktemp("leak-hosts")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Emulator]]:
    with (
        TogetherEmulator.running_in_thread(api_key=KEYS["together-ai"]) as together,
        FireworksEmulator.running_in_thread(api_key=KEYS["fireworks-ai"]) as fireworks,
        XAIEmulator.running_in_thread(api_key=KEYS["x-ai"]) as xai,
        RecraftEmulator.running_in_thread(api_key=KEYS["recraft-ai"]) as recraft,
    ):
        yield {"together-ai": together, "fireworks-ai": fireworks, "x-ai": xai, "recraft-ai": recraft}


def echoes(provider: str, secret: str) -> Fault:
    """The provider's own failure, with the key it was sent written into the body."""
    if provider == "together-ai":
        return Fault.status(401, {"error": {"message": f"Invalid API key {secret}", "type": "invalid_request_error"}})
    if provider == "fireworks-ai":
        return Fault.status(401, {"fault": {"faultstring": f"Invalid ApiKey {secret}", "detail": {"errorcode": "x"}}})
    if provider == "x-ai":
        return Fault.status(
            400, {"code": "Client specified an invalid argument", "error": f"Incorrect API key {secret}"}
        )
    return Fault.status(401, f"Unauthorized: {secret}")


def serve_a_virtual_key(admin: ImageGatewayClient, provider: str, emulator: Emulator, seen: Transcript) -> None:
    """A virtual key of ``provider`` created, shown, served, and refused by an upstream that echoes its key."""
    name = f"leak-{provider}"
    seen.call(
        "CreateVirtualKey", lambda: admin.create_virtual_key(name, provider, KEYS[provider], base_url=emulator.base_url)
    )
    seen.call("GetVirtualKey", lambda: admin.get_virtual_key(name))
    seen.call("GenerateImage vk", lambda: admin.generate_image(prompt="p", model=MODELS[provider], virtual_key=name))
    emulator.inject(echoes(provider, KEYS[provider]))
    seen.call("GenerateImage vk echo", lambda: admin.generate_image(prompt="p", virtual_key=name))


def drive(gateway: GatewayThread, fakes: dict[str, Emulator], seen: Transcript) -> None:
    rest = gateway.rest_base_url + "/images/generations"
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        for provider, emulator in fakes.items():
            serve_a_virtual_key(admin, provider, emulator, seen)
        chain = {
            "strategy": {"mode": "fallback"},
            "targets": [{"provider": p, "api_key": KEYS[p], "custom_host": fakes[p].base_url} for p in KEYS],
        }
        config = seen.call("CreateConfig", lambda: admin.create_config("leak-hosts", chain))
        seen.call("GetConfig", lambda: admin.get_config(config.id))
        seen.call("ListConfigs", lambda: admin.list_configs())
        for provider, emulator in fakes.items():
            emulator.inject(echoes(provider, KEYS[provider]))
        seen.call("GenerateImage all echo", lambda: admin.generate_image(prompt="p", config_id=config.id))
        seen.call("StreamGenerateImage", lambda: list(admin.stream_generate_image(prompt="p", config_id=config.id)))
        key = admin.create_api_key("leak-hosts-generate", "generate").key
        with httpx.Client(timeout=TIMEOUT) as client:
            seen.add(
                "REST config",
                client.post(
                    rest,
                    json={"prompt": "p"},
                    headers={"x-portkey-api-key": key, "x-portkey-config": json.dumps(chain)},
                ),
            )
            for provider, emulator in fakes.items():
                emulator.inject(echoes(provider, BARE))
                seen.add(
                    f"REST bare {provider}",
                    client.post(
                        rest,
                        json={"prompt": "p"},
                        headers={
                            "x-portkey-api-key": key,
                            "x-portkey-provider": provider,
                            "x-portkey-custom-host": emulator.base_url,
                            "authorization": f"Bearer {BARE}",
                        },
                    ),
                )
        logs = admin.list_logs(page_size=200)
        seen.add("ListLogs", logs)
        for entry in logs.logs:
            seen.call("GetLog", lambda e=entry: admin.get_log(e.id))  # type: ignore[misc]
        seen.call("ListTargetHealth", lambda: admin.list_target_health())
        seen.call("ListVirtualKeys", lambda: admin.list_virtual_keys())
    seen.add("metrics", httpx.get(gateway.metrics_url, timeout=TIMEOUT).text)


def test_no_model_host_key_appears_in_anything_the_gateway_says(
    leaky_hosts: GatewayThread, fakes: dict[str, Emulator], caplog: pytest.LogCaptureFixture
) -> None:
    seen = Transcript()
    with caplog.at_level(logging.DEBUG):
        drive(leaky_hosts, fakes, seen)
    seen.add_logs(caplog.records)
    # The keys did reach the providers (and came back in their error bodies), so there is something to find.
    sent = " ".join(r.headers.get("authorization", "") for emulator in fakes.values() for r in emulator.requests)
    assert all(secret in sent for secret in (*KEYS.values(), BARE))
    assert any(where == "GenerateImage vk" for where, _ in seen.parts) and len(caplog.records) > 10
    leaks = seen.leaks({**KEYS, "bare": BARE})
    assert leaks == [], f"secrets found (secret, where): {sorted(set(leaks))}"
