"""Shared fixtures: provider emulators and a real gateway process, both on loopback sockets."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from imagegateway import ImageGatewayClient
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.factory import store_for_url
from tests.emulators import (
    AzureOpenAIEmulator,
    BedrockEmulator,
    GeminiApiEmulator,
    OpenAIEmulator,
    StabilityEmulator,
    VertexEmulator,
)
from tests.emulators.vertex import service_account_key
from tests.harness import GatewayThread, running_gateway
from tests.postgres_server import PostgresServer, running_postgres
from tests.redis_server import RedisServer, running_redis

OPENAI_SECRET = "sk-test-openai-0123456789abcdef"
STABILITY_SECRET = "sk-test-stability-0123456789abcdef"
AZURE_SECRET = "azure-test-key-0123456789abcdef"
AZURE_AD_TOKEN = "eyJ0eXAiOiJKV1Qi.azure-test-entra-token.0123456789"
GEMINI_SECRET = "AIzaSyTest-gemini-api-key-0123456789abc"
VERTEX_ACCESS_TOKEN = "ya29.test-static-vertex-token-0123456789"
VERTEX_PROJECT = "imagegw-test"
VERTEX_ACCOUNT = "imagegw@imagegw-test.iam.gserviceaccount.com"

COOKBOOK_STABILITY_VK = "stability-ai-virtualkey"
COOKBOOK_OPENAI_VK = "open-ai-virtual-key"

T = TypeVar("T")

# Every store test runs on each backend: ``store_url`` and ``any_store`` are parametrized over them.
STORE_BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (tests/postgres_server.py), started on first use."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=STORE_BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of each backend: a SQLite file, or a migrated PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'gateway.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    yield url
    server.drop_database(url)


@pytest.fixture
async def any_store(store_url: str) -> AsyncIterator[Store]:
    """An open store of each backend, closed after the test."""
    store = store_for_url(store_url)
    await store.open()
    yield store
    await store.close()


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


@dataclasses.dataclass(frozen=True)
class ServiceAccount:
    """A throwaway service account key (its JSON text and members) registered with the Vertex emulator."""

    text: str
    key: dict[str, str]


@pytest.fixture(scope="session")
def vertex_emulator() -> Iterator[VertexEmulator]:
    """Vertex AI for project ``imagegw-test`` (locations us-central1, europe-west4, global); it accepts
    ``VERTEX_ACCESS_TOKEN`` and the tokens its ``/token`` endpoint issues for registered accounts."""
    with VertexEmulator.running_in_thread(static_tokens=(VERTEX_ACCESS_TOKEN,), project=VERTEX_PROJECT) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def service_account(vertex_emulator: VertexEmulator) -> ServiceAccount:
    """A service account whose ``token_uri`` is the Vertex emulator's token endpoint."""
    key, public_pem = service_account_key(VERTEX_ACCOUNT, VERTEX_PROJECT, vertex_emulator.token_uri)
    vertex_emulator.add_account(VERTEX_ACCOUNT, public_pem)
    return ServiceAccount(json.dumps(key), key)


@pytest.fixture(scope="session")
def gemini_emulator() -> Iterator[GeminiApiEmulator]:
    with GeminiApiEmulator.running_in_thread(api_key=GEMINI_SECRET) as emulator:
        yield emulator


@pytest.fixture
def google_emulators(
    vertex_emulator: VertexEmulator, gemini_emulator: GeminiApiEmulator
) -> Iterator[tuple[VertexEmulator, GeminiApiEmulator]]:
    """The Vertex and Gemini API emulators, faults and recorded requests cleared before and after the test."""
    for emulator in (vertex_emulator, gemini_emulator):
        emulator.reset()
    yield vertex_emulator, gemini_emulator
    for emulator in (vertex_emulator, gemini_emulator):
        emulator.reset()


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


# Amazon Bedrock: a long-term key pair, a temporary one (with its session token) and an API key.
BEDROCK_REGION = "us-east-1"
BEDROCK_ACCESS_KEY_ID = "AKIAIMAGEGWTEST00001"
BEDROCK_SECRET_ACCESS_KEY = "bedrock/test+secret-0123456789abcdefABCDEF"
BEDROCK_TEMP_ACCESS_KEY_ID = "ASIAIMAGEGWTEST00002"
BEDROCK_TEMP_SECRET_ACCESS_KEY = "bedrock/temporary+secret-0123456789abcdef"
BEDROCK_SESSION_TOKEN = "IQoJb3JpZ2luX2VjEBedrockTestSessionToken0123456789+/="
BEDROCK_API_KEY = "ABSKQmVkcm9ja0FQSUtleS1pbWFnZWd3LXRlc3Q0123456789"
BEDROCK_SECRETS = (BEDROCK_SECRET_ACCESS_KEY, BEDROCK_TEMP_SECRET_ACCESS_KEY, BEDROCK_SESSION_TOKEN, BEDROCK_API_KEY)


@pytest.fixture(scope="session")
def bedrock_emulator_session() -> Iterator[BedrockEmulator]:
    """Bedrock Runtime in us-east-1, checking SigV4 against both key pairs and Bearers against the API key."""
    with BedrockEmulator.running_in_thread(
        api_key=BEDROCK_API_KEY,
        access_key_id=BEDROCK_ACCESS_KEY_ID,
        secret_access_key=BEDROCK_SECRET_ACCESS_KEY,
        region=BEDROCK_REGION,
    ) as emulator:
        emulator.add_key_pair(BEDROCK_TEMP_ACCESS_KEY_ID, BEDROCK_TEMP_SECRET_ACCESS_KEY, BEDROCK_SESSION_TOKEN)
        yield emulator


@pytest.fixture
def bedrock_emulator(bedrock_emulator_session: BedrockEmulator) -> Iterator[BedrockEmulator]:
    """The Bedrock emulator with faults, recorded requests and expired tokens cleared around the test."""
    bedrock_emulator_session.reset()
    yield bedrock_emulator_session
    bedrock_emulator_session.reset()


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
