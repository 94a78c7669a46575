"""Shared fixtures: provider emulators and a real gateway process, both on loopback sockets."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from imagegateway import ImageGatewayClient
from tests.emulators import AzureOpenAIEmulator, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway
from tests.redis_server import RedisServer, running_redis

OPENAI_SECRET = "sk-test-openai-0123456789abcdef"
STABILITY_SECRET = "sk-test-stability-0123456789abcdef"
AZURE_SECRET = "azure-test-key-0123456789abcdef"
AZURE_AD_TOKEN = "eyJ0eXAiOiJKV1Qi.azure-test-entra-token.0123456789"

COOKBOOK_STABILITY_VK = "stability-ai-virtualkey"
COOKBOOK_OPENAI_VK = "open-ai-virtual-key"

T = TypeVar("T")


@pytest.fixture(scope="session")
def openai_emulator() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator.running_in_thread(api_key=OPENAI_SECRET) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def stability_emulator() -> Iterator[StabilityEmulator]:
    with StabilityEmulator.running_in_thread(api_key=STABILITY_SECRET) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def azure_emulator() -> Iterator[AzureOpenAIEmulator]:
    """Azure OpenAI with deployments ``dalle3`` (dall-e-3) and ``gpt-image`` (gpt-image-1)."""
    with AzureOpenAIEmulator.running_in_thread(api_key=AZURE_SECRET, ad_token=AZURE_AD_TOKEN) as emulator:
        yield emulator


@dataclasses.dataclass
class Emulators:
    openai: OpenAIEmulator
    stability: StabilityEmulator
    azure: AzureOpenAIEmulator


@pytest.fixture
def emulators(
    openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator, azure_emulator: AzureOpenAIEmulator
) -> Iterator[Emulators]:
    """Every emulator, with faults and recorded requests cleared before and after the test."""
    every = (openai_emulator, stability_emulator, azure_emulator)
    for emulator in every:
        emulator.reset()
    yield Emulators(openai_emulator, stability_emulator, azure_emulator)
    for emulator in every:
        emulator.reset()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(tmp_path_factory.mktemp("gateway")) as running:
        yield running


@pytest.fixture(scope="session")
def admin(gateway: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as client:
        yield client


@dataclasses.dataclass(frozen=True)
class Seed:
    """The cookbook's setup: two virtual keys and the fallback config."""

    stability_vk: str
    openai_vk: str
    config_id: str


COOKBOOK_CONFIG = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"virtual_key": COOKBOOK_STABILITY_VK, "override_params": {"model": "stable-diffusion-v1-6"}},
        {"virtual_key": COOKBOOK_OPENAI_VK, "override_params": {"model": "dall-e-3"}},
    ],
}


@pytest.fixture(scope="session")
def seed(admin: ImageGatewayClient, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator) -> Seed:
    stability = admin.create_virtual_key(
        COOKBOOK_STABILITY_VK, "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url
    )
    openai = admin.create_virtual_key(COOKBOOK_OPENAI_VK, "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
    config = admin.create_config("sdxl-to-dalle", COOKBOOK_CONFIG)
    return Seed(stability.id, openai.id, config.id)


def eventually(probe: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Polls until ``probe`` returns something truthy (request logs are written in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session (or IMAGEGW_TEST_REDIS_URL's); tests flush it first."""
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied for this test."""
    redis_server.flush()
    return redis_server.url
