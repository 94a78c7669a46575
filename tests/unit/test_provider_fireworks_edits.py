"""FLUX Kontext edits on Fireworks over real sockets: the one image as ``input_image`` (base64) of the
Kontext task; a mask, several images and edits on the text-to-image workflows are refused naming them.

The Fireworks emulator checks ``input_image`` (a URL, or base64 of a PNG, JPEG or WebP)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.fireworks.adapter import FireworksAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from tests.adapter_failures import generate_fails
from tests.credentials import api_key
from tests.emulators import FireworksEmulator
from tests.image_fixtures import edit_of, left_half_mask, photo
from tests.model_host_emulators import FIREWORKS_SECRET, Hosts, host_emulators, hosts

__all__ = ["host_emulators", "hosts"]

TARGET = UpstreamTarget(credential=api_key(FIREWORKS_SECRET, "fireworks-ai"))
KONTEXT = "flux-kontext-pro"
KONTEXT_PATH = "/inference/v1/workflows/accounts/fireworks/models/flux-kontext-pro"


@pytest.fixture
def emu(hosts: Hosts) -> FireworksEmulator:
    return hosts.fireworks


@pytest.fixture
async def fireworks(emu: FireworksEmulator) -> AsyncIterator[FireworksAdapter]:
    adapter = FireworksAdapter(base_url=emu.base_url)
    yield adapter
    await adapter.aclose()


def edit(*images: bytes, mask: bytes | None = None, **fields: Any) -> ImageRequest:
    return edit_of(*images, prompt="make it night", model=fields.pop("model", KONTEXT), mask=mask, **fields)


def test_kontext_edits_the_text_to_image_workflows_do_not() -> None:
    adapter = FireworksAdapter()
    assert adapter.operations(KONTEXT) == {Operation.GENERATE, Operation.EDIT}
    assert adapter.operations("flux-kontext-max") == {Operation.GENERATE, Operation.EDIT}
    assert adapter.operations("flux-1-schnell-fp8") == {Operation.GENERATE}


async def test_a_kontext_edit_sends_its_image_as_input_image(
    fireworks: FireworksAdapter, emu: FireworksEmulator
) -> None:
    image = photo(fmt="JPEG")
    result = await fireworks.generate(edit(image, size="1024x1024", seed=3), TARGET)
    submit = emu.requests[0]
    assert submit.path == KONTEXT_PATH
    body = submit.json or {}
    assert base64.b64decode(body.pop("input_image")) == image
    assert body == {"prompt": "make it night", "aspect_ratio": "1:1", "seed": 3}
    assert result.images and result.images[0].model == KONTEXT


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (edit(photo(), mask=left_half_mask()), "mask"),
        (edit(photo(), photo()), "image"),
        (edit(photo(), model="flux-1-schnell-fp8"), "model"),
    ],
)
async def test_what_fireworks_kontext_cannot_edit_is_refused_before_any_call(
    fireworks: FireworksAdapter, emu: FireworksEmulator, req: ImageRequest, param: str
) -> None:
    error = await generate_fails(fireworks, req, TARGET)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


@pytest.mark.parametrize("value", ["bm90IGFuIGltYWdl", "not base64!", 7])
async def test_the_emulator_refuses_an_input_image_that_is_not_an_image(emu: FireworksEmulator, value: object) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.base_url}/workflows/accounts/fireworks/models/{KONTEXT}",
            json={"prompt": "x", "input_image": value},
            headers={"Authorization": f"Bearer {FIREWORKS_SECRET}"},
        )
    assert response.status_code == 400 and "input_image" in response.text
