"""Hypothesis profiles for the fuzz tests, and one gateway (with emulators behind it) they all share.

The profile is chosen once for the session: ``ci`` when CI is set (no example database, so every
run explores afresh, and a reproduction blob printed on failure), ``dev`` otherwise. Both drop the
per-example deadline: the suite runs on a slow, noisy 2-core machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from imagegateway import ImageGatewayClient
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET
from tests.emulators import OpenAIEmulator, StabilityEmulator
from tests.fuzz.in_process import InProcessRest
from tests.fuzz.rest_inputs import RestContext
from tests.fuzz.routes import FuzzTargets
from tests.harness import GatewayThread, running_gateway

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile("ci", deadline=None, database=None, print_blob=True, suppress_health_check=_RELAXED)
settings.register_profile("dev", deadline=None, suppress_health_check=_RELAXED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="package")
def fuzz_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    """A gateway of its own: fuzzed admin calls create configs and keys other tests must not see."""
    with running_gateway(Path(tmp_path_factory.mktemp("fuzz-gateway"))) as gateway:
        yield gateway


@pytest.fixture(scope="package")
def fuzz_targets(
    fuzz_gateway: GatewayThread, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> FuzzTargets:
    """Virtual keys and a saved config on the fuzz gateway, all pointing at the emulators."""
    with ImageGatewayClient(fuzz_gateway.grpc_target, api_key=fuzz_gateway.admin_key) as admin:
        openai = admin.create_virtual_key("fuzz-openai", "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
        stability = admin.create_virtual_key(
            "fuzz-stability", "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url
        )
        config = admin.create_config(
            "fuzz-fallback",
            {
                "strategy": {"mode": "fallback"},
                "targets": [{"virtual_key": stability.id}, {"virtual_key": openai.id}],
            },
        )
    return FuzzTargets(
        openai_vk=openai.id,
        stability_vk=stability.id,
        config_id=config.id,
        openai_url=openai_emulator.base_url,
        stability_url=stability_emulator.base_url,
    )


@pytest.fixture(scope="package")
def rest_context(fuzz_gateway: GatewayThread, fuzz_targets: FuzzTargets) -> RestContext:
    with ImageGatewayClient(fuzz_gateway.grpc_target, api_key=fuzz_gateway.admin_key) as admin:
        generate_key = admin.create_api_key("fuzz-generate", "generate").key
    return RestContext(fuzz_targets, fuzz_gateway.admin_key, generate_key, OPENAI_SECRET, STABILITY_SECRET)


@pytest.fixture(scope="package")
def rest_app(fuzz_gateway: GatewayThread) -> Iterator[InProcessRest]:
    client = InProcessRest(fuzz_gateway)
    yield client
    client.close()
