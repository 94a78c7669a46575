"""FLUX Kontext edits on fal over real sockets: the images as base64 data URLs in ``image_url`` (or
``image_urls`` on ``/multi``), sized by ``aspect_ratio``; a mask, a generation and too many images
are refused naming them before any call.

The fal emulator checks Kontext's input as fal does (the image required, a URL or a data URI,
Kontext's nine aspect ratios).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.fal.adapter import FalAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.adapter_failures import generate_fails
from tests.emulators import FalEmulator
from tests.image_fixtures import edit_of, left_half_mask, photo

KEY = "fal-test-key-0123456789:abcdef"
KONTEXT = "fal-ai/flux-pro/kontext"


@pytest.fixture
async def emu() -> AsyncIterator[FalEmulator]:
    async with FalEmulator(KEY, job_seconds=0.05) as emulator:
        yield emulator


@pytest.fixture
async def adapter(emu: FalEmulator) -> AsyncIterator[FalAdapter]:
    made = FalAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    yield made
    await made.aclose()


def target(**kwargs: Any) -> UpstreamTarget:
    credential = Credential.of("fal-ai", {"api_key": KEY}, ["api_key"])
    return UpstreamTarget(credential=credential, timeout=10.0, jobs=JobProgress(), **kwargs)


def edit(*images: bytes, mask: bytes | None = None, **fields: Any) -> ImageRequest:
    model = fields.pop("model", KONTEXT)
    return edit_of(*images, prompt="put a donut next to the flour", model=model, mask=mask, **fields)


def data_url_bytes(url: str) -> bytes:
    header, _, data = url.partition(",")
    assert header.startswith("data:image/") and header.endswith(";base64")
    return base64.b64decode(data)


def test_kontext_endpoints_edit_the_others_generate() -> None:
    adapter = FalAdapter()
    for model in (KONTEXT, f"{KONTEXT}/max", f"{KONTEXT}/multi", f"{KONTEXT}/max/multi"):
        assert adapter.operations(model) == {Operation.GENERATE, Operation.EDIT}, model
    assert adapter.operations("fal-ai/flux/dev") == {Operation.GENERATE}


async def test_a_kontext_edit_sends_the_image_as_a_data_url_and_the_size_as_an_aspect_ratio(
    adapter: FalAdapter, emu: FalEmulator
) -> None:
    image = photo(fmt="JPEG")
    req = edit(image, size="1792x1024", n=2, seed=9, cfg_scale=4.0, extra={"safety_tolerance": 3})
    result = await adapter.generate(req, target())
    submit = emu.requests[0]
    assert submit.path == f"/{KONTEXT}"
    body = submit.json or {}
    assert data_url_bytes(body.pop("image_url")) == image
    assert body == {
        "prompt": "put a donut next to the flour",
        "aspect_ratio": "16:9",
        "num_images": 2,
        "seed": 9,
        "guidance_scale": 4.0,
        "safety_tolerance": "3",
    }
    assert len(result.images) == 2 and result.images[0].model == KONTEXT
    assert result.translations == ("size=1792x1024->16:9",)


async def test_several_images_go_to_multi_as_image_urls(adapter: FalAdapter, emu: FalEmulator) -> None:
    first, second = photo(), photo((0, 0, 200))
    await adapter.generate(edit(first, second, model=f"{KONTEXT}/max/multi"), target())
    body = emu.requests[0].json or {}
    assert [data_url_bytes(url) for url in body["image_urls"]] == [first, second]
    assert "image_url" not in body


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (edit(photo(), mask=left_half_mask()), "mask"),
        (edit(photo(), photo()), "image"),  # one image on the single-image endpoint
        (ImageRequest(prompt="a fox", model=KONTEXT), "model"),  # Kontext's endpoint edits
        (edit(photo(), model="fal-ai/flux/dev"), "model"),
        (edit(photo(), aspect_ratio="5:4"), "aspect_ratio"),
    ],
)
async def test_what_kontext_cannot_do_is_refused_naming_it_before_any_call(
    adapter: FalAdapter, emu: FalEmulator, req: ImageRequest, param: str
) -> None:
    error = await generate_fails(adapter, req, target(), KEY)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert not emu.requests


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "a fox"}, "image_url"),
        ({"prompt": "a fox", "image_url": "not a url"}, "image_url"),
        ({"prompt": "a fox", "image_url": "data:image/png;base64,%%%"}, "image_url"),
        ({"prompt": "a fox", "image_url": "https://example.com/a.png", "aspect_ratio": "5:4"}, "aspect_ratio"),
    ],
)
async def test_the_emulator_checks_kontexts_input_as_fal_does(
    emu: FalEmulator, body: dict[str, Any], field: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emu.base_url}/{KONTEXT}", json=body, headers={"Authorization": f"Key {KEY}"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
