"""FLUX edits on BFL over real sockets: the uploaded images become Kontext's and FLUX.2's
``input_image`` fields of an asynchronous task; a mask, too many images and variations are refused.

The BFL emulator checks each ``input_image*`` field as BFL does (a URL or base64 of a PNG, JPEG or
WebP; Kontext's slots end at ``input_image_4``, FLUX.2's at ``input_image_8``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.black_forest_labs.adapter import BlackForestLabsAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.adapter_failures import generate_fails
from tests.emulators import BFLEmulator
from tests.image_fixtures import edit_of, left_half_mask, photo

KEY = "bfl-test-key-0123456789abcdef"


@pytest.fixture
async def emu() -> AsyncIterator[BFLEmulator]:
    async with BFLEmulator(KEY, job_seconds=0.05) as emulator:
        yield emulator


@pytest.fixture
async def adapter(emu: BFLEmulator) -> AsyncIterator[BlackForestLabsAdapter]:
    made = BlackForestLabsAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    yield made
    await made.aclose()


def target(**kwargs: Any) -> UpstreamTarget:
    credential = Credential.of("black-forest-labs", {"api_key": KEY}, ["api_key"])
    return UpstreamTarget(credential=credential, timeout=10.0, jobs=JobProgress(), **kwargs)


def edit(*images: bytes, mask: bytes | None = None, **fields: Any) -> ImageRequest:
    return edit_of(*images, prompt="make the sky purple", mask=mask, **fields)


def picture(colour: tuple[int, int, int], fmt: str = "PNG") -> bytes:
    return photo(colour, fmt)


def submitted(emu: BFLEmulator) -> list[dict[str, Any]]:
    return [request.json or {} for request in emu.requests if request.method == "POST"]


def test_kontext_and_flux_2_edit_the_others_only_generate() -> None:
    adapter = BlackForestLabsAdapter()
    for model in ("flux-kontext-pro", "flux-kontext-max", "flux-2-pro", "flux-2-flex"):
        assert adapter.operations(model) == {Operation.GENERATE, Operation.EDIT}, model
    for model in ("flux-pro-1.1", "flux-pro-1.1-ultra", "no-such-model"):
        assert adapter.operations(model) == {Operation.GENERATE}, model


async def test_a_kontext_edit_sends_the_images_as_input_image_fields_of_one_task_per_image(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    first, second = picture((200, 10, 10)), picture((10, 10, 200), "JPEG")
    req = edit(first, second, model="flux-kontext-pro", size="1792x1024", n=2, seed=7, extra={"safety_tolerance": 2})
    result = await adapter.generate(req, target())
    bodies = sorted(submitted(emu), key=lambda body: body["seed"])
    assert [body["seed"] for body in bodies] == [7, 8]
    for body in bodies:
        assert set(body) == {"prompt", "input_image", "input_image_2", "aspect_ratio", "seed", "safety_tolerance"}
        assert body["prompt"] == "make the sky purple" and body["aspect_ratio"] == "16:9"
        assert base64.b64decode(body["input_image"]) == first  # base64, no data: prefix
        assert base64.b64decode(body["input_image_2"]) == second
    assert len(result.images) == 2 and result.images[0].model == "flux-kontext-pro"
    assert result.translations == ("n=2->2x1", "size=1792x1024->16:9")


async def test_flux_2_takes_eight_images_and_kontext_four(adapter: BlackForestLabsAdapter, emu: BFLEmulator) -> None:
    eight = [picture((index * 30, 0, 0)) for index in range(8)]
    await adapter.generate(edit(*eight, model="flux-2-pro"), target())
    (body,) = submitted(emu)
    assert {name for name in body if name.startswith("input_image")} == {
        "input_image",
        *(f"input_image_{index}" for index in range(2, 9)),
    }
    error = await generate_fails(adapter, edit(*eight[:5], model="flux-kontext-max"), target(), KEY)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "image")
    assert "at most 4" in str(error)


@pytest.mark.parametrize("strict", [False, True])
async def test_an_edit_with_a_mask_is_refused_naming_the_mask_in_every_mode(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator, strict: bool
) -> None:
    req = edit(picture((1, 2, 3)), mask=left_half_mask(), model="flux-kontext-pro")
    error = await generate_fails(adapter, req, target(strict=strict), KEY)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "mask")
    assert "no mask" in str(error)
    assert not emu.requests


async def test_an_input_image_extra_beside_uploaded_images_is_refused(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    req = edit(picture((1, 2, 3)), model="flux-kontext-pro", extra={"input_image_2": "https://example.com/a.png"})
    error = await generate_fails(adapter, req, target(), KEY)
    assert error.param == "input_image_2" and not emu.requests


async def test_a_model_that_cannot_edit_refuses_naming_the_model(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    error = await generate_fails(adapter, edit(picture((1, 2, 3)), model="flux-pro-1.1"), target(), KEY)
    assert (error.param, error.code) == ("model", "unsupported_operation") and not emu.requests


async def test_the_emulator_refuses_an_input_image_that_is_neither_a_url_nor_an_image(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    req = ImageRequest(prompt="a fox", model="flux-kontext-pro", extra={"input_image": "bm90IGFuIGltYWdl"})
    error = await generate_fails(adapter, req, target(), KEY)
    assert error.kind is ErrorKind.BAD_REQUEST and "input_image" in str(error)
    req = ImageRequest(prompt="a fox", model="flux-kontext-pro", extra={"input_image_3": "https://example.com/a.png"})
    error = await generate_fails(adapter, req, target(), KEY)
    assert "input_image" in str(error)
