"""Fixtures for the synchronous model hosts' emulators (Together, Fireworks, xAI, Recraft).

Kept beside the shared ``conftest`` rather than in it: a test module imports the fixtures it uses.
Each emulator runs once per session in its own thread with its provider key; ``hosts`` clears
faults and recorded requests around every test.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from tests.emulators import FireworksEmulator, RecraftEmulator, TogetherEmulator, XAIEmulator

TOGETHER_SECRET = "together-test-key-0123456789abcdef"
FIREWORKS_SECRET = "fw_test_key_0123456789abcdef0123"
XAI_SECRET = "xai-test-key-0123456789abcdef0123"
RECRAFT_SECRET = "recraft-test-token-0123456789abcdef"
HOST_SECRETS = (TOGETHER_SECRET, FIREWORKS_SECRET, XAI_SECRET, RECRAFT_SECRET)


@dataclasses.dataclass
class Hosts:
    together: TogetherEmulator
    fireworks: FireworksEmulator
    xai: XAIEmulator
    recraft: RecraftEmulator

    def all(self) -> tuple[TogetherEmulator, FireworksEmulator, XAIEmulator, RecraftEmulator]:
        return (self.together, self.fireworks, self.xai, self.recraft)


@pytest.fixture(scope="session")
def host_emulators() -> Iterator[Hosts]:
    with (
        TogetherEmulator.running_in_thread(api_key=TOGETHER_SECRET) as together,
        FireworksEmulator.running_in_thread(api_key=FIREWORKS_SECRET) as fireworks,
        XAIEmulator.running_in_thread(api_key=XAI_SECRET) as xai,
        RecraftEmulator.running_in_thread(api_key=RECRAFT_SECRET) as recraft,
    ):
        yield Hosts(together, fireworks, xai, recraft)


@pytest.fixture
def hosts(host_emulators: Hosts) -> Iterator[Hosts]:
    """Every model-host emulator, with faults and recorded requests cleared before and after the test."""
    for emulator in host_emulators.all():
        emulator.reset()
    yield host_emulators
    for emulator in host_emulators.all():
        emulator.reset()
