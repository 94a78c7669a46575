"""What the dashboard tests share: a gateway that keeps images, REST requests that land in its log,
and an httpx client logged in to the dashboard API the way the page is (cookie plus header)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from imagegateway import ImageGatewayClient
from tests.conftest import (
    COOKBOOK_CONFIG,
    COOKBOOK_OPENAI_VK,
    COOKBOOK_STABILITY_VK,
    OPENAI_SECRET,
    STABILITY_SECRET,
    Seed,
)
from tests.emulators import OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway

DASHBOARD_HEADER = {"x-imagegw-dashboard": "1"}


def origin(gateway: GatewayThread) -> str:
    return f"http://127.0.0.1:{gateway.process.http_port}"


@contextlib.contextmanager
def keeping_gateway(
    data_dir: Path, openai: OpenAIEmulator, stability: StabilityEmulator
) -> Iterator[tuple[GatewayThread, Seed]]:
    """A gateway with IMAGEGW_KEEP_IMAGES on, seeded with the cookbook's virtual keys and config.

    Its breakers track every target (so the dashboard has breaker state to show) but trip only after
    50 consecutive failures, which these tests never reach: injected faults must not skip targets.
    """
    with (
        running_gateway(
            data_dir, keep_images=True, breaker_consecutive_failures=50, breaker_failure_rate=0.0
        ) as gateway,
        ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin,
    ):
        admin.create_virtual_key(COOKBOOK_STABILITY_VK, "stability-ai", STABILITY_SECRET, base_url=stability.base_url)
        admin.create_virtual_key(COOKBOOK_OPENAI_VK, "openai", OPENAI_SECRET, base_url=openai.base_url)
        config = admin.create_config("sdxl-to-dalle", COOKBOOK_CONFIG)
        yield gateway, Seed(COOKBOOK_STABILITY_VK, COOKBOOK_OPENAI_VK, config.id)


def new_generate_key(gateway: GatewayThread, name: str) -> tuple[str, str]:
    """(key id, plaintext) of a fresh generate-scope key."""
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        created = admin.create_api_key(f"{name}-{uuid.uuid4().hex[:6]}", "generate")
    return created.api_key.id, created.key


def generate(
    gateway: GatewayThread,
    key: str,
    config_id: str,
    *,
    trace_id: str,
    keep: bool = False,
    prompt: str = "a kraken in the milky way",
    metadata: dict[str, str] | None = None,
) -> httpx.Response:
    """One image request through the REST shim, routed by the saved config (with ``metadata`` as
    x-portkey-metadata)."""
    headers = {"x-portkey-api-key": key, "x-portkey-config": config_id, "x-portkey-trace-id": trace_id}
    if metadata is not None:
        headers["x-portkey-metadata"] = json.dumps(metadata)
    if keep:
        headers["x-imagegw-keep-image"] = "true"
    body = {
        "model": "stable-diffusion-v1-6",
        "prompt": prompt,
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
    }
    return httpx.post(gateway.rest_base_url + "/images/generations", json=body, headers=headers, timeout=60)


class DashboardClient:
    """The dashboard API as the page calls it. ``login`` keeps the session cookie; the key is not kept."""

    def __init__(self, gateway: GatewayThread) -> None:
        self.http = httpx.Client(base_url=origin(gateway), headers=DASHBOARD_HEADER, timeout=30)

    def __enter__(self) -> DashboardClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, key: str) -> httpx.Response:
        response = self.http.post("/dashboard/api/login", json={"key": key})
        assert response.status_code == 200, response.text
        return response

    def logs(self, **params: str) -> list[dict[str, Any]]:
        response = self.http.get("/dashboard/api/logs", params=params)
        assert response.status_code == 200, response.text
        logs: list[dict[str, Any]] = response.json()["logs"]
        return logs
