"""OpenAI's ``markup`` edit parameter: checked at the edge as OpenAI's reference describes it, sent
as a file part to the models that take it (gpt-image-2.5 and later), refused by name elsewhere,
keyed in the cache by its digest, and carried by gRPC's EditImage and chunked EditImageUpload."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from imagegateway.uploads import edit_upload_messages
from imagegateway.v1 import images_pb2
from imagegateway_server.api.grpc_mapping import edit_request
from imagegateway_server.api.grpc_upload import read_edit_upload
from imagegateway_server.api.upload_budget import Reservation, UploadBudget
from imagegateway_server.cli import main as imagegw
from imagegateway_server.domain.errors import InvalidArgument, ProviderError
from imagegateway_server.domain.image_inputs import Operation, input_image
from imagegateway_server.domain.input_limits import InputLimits
from imagegateway_server.domain.request import ImageRequest, validate_request
from imagegateway_server.providers.kit.openai_images import build_form, takes_markup
from imagegateway_server.routing.cache_key import request_material


def encode(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def picture(size: int = 64) -> bytes:
    return encode(Image.new("RGB", (size, size), (10, 120, 200)))


def overlay(size: int = 64) -> bytes:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (8, 8, 16, 16))
    return encode(image)


def edit(markup: bytes | None = None, mask: bytes | None = None, **fields: Any) -> ImageRequest:
    return ImageRequest(
        prompt="make the circled cup blue",
        operation=Operation.EDIT,
        images=(input_image(picture(), param="image"),),
        mask=input_image(mask, param="mask") if mask else None,
        markup=input_image(markup, param="markup") if markup else None,
        **fields,
    )


@pytest.mark.parametrize(
    ("model", "takes"),
    [
        ("gpt-image-2.5-flare", True),
        ("gpt-image-2.5-sunburst-2026-09-08", True),
        ("gpt-image-2.6-flare", True),
        ("gpt-image-3", True),
        ("gpt-image-2", False),
        ("gpt-image-2-2026-04-21", False),
        ("gpt-image-1.5", False),
        ("gpt-image-1-mini", False),
        ("chatgpt-image-latest", False),
        ("dall-e-2", False),
        ("my-local-model", True),  # a compatible server judges for itself
    ],
)
def test_markup_is_taken_by_gpt_image_2_5_and_later(model: str, takes: bool) -> None:
    assert takes_markup(model) is takes


def test_the_markup_goes_unchanged_as_a_file_part_after_the_images() -> None:
    markup = overlay()
    fields, files = build_form(edit(markup), "gpt-image-2.5-flare", provider="openai")
    assert [(part.name, part.data) for part in files] == [("image", picture()), ("markup", markup)]
    assert ("prompt", "make the circled cup blue") in fields and not any(name == "markup" for name, _ in fields)


@pytest.mark.parametrize("model", ["gpt-image-2", "gpt-image-1.5", "dall-e-2"])
def test_a_model_without_markup_refuses_it_by_name(model: str) -> None:
    with pytest.raises(ProviderError) as caught:
        build_form(edit(overlay()), model, provider="openai")
    assert caught.value.param == "markup"


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (lambda: edit(overlay(), mask=overlay()), "combined with mask"),
        (lambda: edit(overlay(32)), "same size"),
        (lambda: edit(picture()), "alpha channel"),
    ],
)
def test_bad_markup_is_refused_at_the_edge_naming_it(request_: Any, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_request(request_())
    assert caught.value.param == "markup" and message in str(caught.value)


def test_the_cache_key_follows_the_markup_and_edits_without_one_keep_their_keys() -> None:
    plain = request_material(edit())
    assert "markup" not in plain
    marked = request_material(edit(overlay()))
    assert marked["markup"] != request_material(edit(encode(Image.new("RGBA", (64, 64), (0, 0, 0, 0)))))["markup"]


def test_grpc_edit_image_carries_the_markup() -> None:
    params = images_pb2.ImageParameters(prompt="circle it", model="gpt-image-2.5-flare")
    request = edit_request(params, [(picture(), "a.png")], None, InputLimits(), (overlay(), "mark.png"))
    assert request.markup is not None and request.markup.filename == "mark.png"
    assert request.without_input_bytes().markup is not None
    assert request.without_input_bytes().markup.data == b""  # type: ignore[union-attr]


async def _messages(items: list[images_pb2.EditImageUploadRequest]) -> AsyncIterator[images_pb2.EditImageUploadRequest]:
    for item in items:
        yield item


def room() -> Reservation:
    return Reservation(UploadBudget(2**30))


async def test_a_chunked_upload_carries_the_markup_after_the_images() -> None:
    image, markup = picture(), overlay()
    sent = list(edit_upload_messages([image], None, ("mark.png", markup), chunk_bytes=100, prompt="circle it"))
    assert sent[0].header.has_markup and not sent[0].header.has_mask
    assert [m.chunk.markup for m in sent[1:]][-1] is True
    upload = await read_edit_upload(_messages(sent), InputLimits(), room())
    assert upload.images == [(image, "")] and upload.mask is None
    assert upload.markup == (markup, "markup.png")


async def test_a_markup_chunk_the_header_did_not_announce_is_refused() -> None:
    sent = list(edit_upload_messages([picture()], None, None, prompt="circle it"))
    stray = images_pb2.EditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(markup=True, data=b"x"))
    with pytest.raises(InvalidArgument) as caught:
        await read_edit_upload(_messages([*sent, stray]), InputLimits(), room())
    assert caught.value.param == "chunk.markup"


def test_cli_edit_takes_either_a_mask_or_a_markup(capsys: pytest.CaptureFixture[str]) -> None:
    code = imagegw(["edit", "--image", "a.png", "--mask", "m.png", "--markup", "k.png", "--prompt", "x", "--out", "o"])
    assert code != 0
    assert "--markup: not allowed with argument --mask" in capsys.readouterr().err
