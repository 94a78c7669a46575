"""Bedrock edits and variations over real sockets: Nova Canvas and Titan v2 inpainting with the mask
converted, image variation on both, and what each refuses before any call.

The Bedrock emulator checks the bodies as Bedrock does (task types, base64 PNG/JPEG without
transparency, a pure black-and-white mask the size of the image) and verifies SigV4 on every call.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.image_inputs import Operation, input_image
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.bedrock.adapter import BedrockAdapter
from imagegateway_server.providers.bedrock.edits import INPAINTING, check_edit, edit_body, prepare_inputs
from imagegateway_server.providers.bedrock.models import MODELS
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS
from tests.conftest import BEDROCK_ACCESS_KEY_ID, BEDROCK_REGION, BEDROCK_SECRET_ACCESS_KEY, BEDROCK_SECRETS
from tests.emulators import BedrockEmulator
from tests.emulators.bedrock_rules import BedrockError, parse_body

NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"


def credential() -> Credential:
    return PROVIDER_SPECS["bedrock"].credentials.parse(
        {
            "aws_access_key_id": BEDROCK_ACCESS_KEY_ID,
            "aws_secret_access_key": BEDROCK_SECRET_ACCESS_KEY,
            "aws_region": BEDROCK_REGION,
        },
        provider="bedrock",
    )


def target(**kwargs: Any) -> UpstreamTarget:
    return UpstreamTarget(credential=credential(), **kwargs)


@pytest.fixture
async def adapter(bedrock_emulator: BedrockEmulator) -> AsyncIterator[BedrockAdapter]:
    made = BedrockAdapter(base_url=bedrock_emulator.base_url)
    yield made
    await made.aclose()


def encode(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def photo(width: int = 512, height: int = 384, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    colour: Any = (40, 90, 160, 255) if mode == "RGBA" else (40, 90, 160)
    return encode(Image.new(mode, (width, height), colour), fmt)


def openai_mask(width: int = 512, height: int = 384) -> bytes:
    """OpenAI's convention: the left half transparent (to edit), the rest opaque."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, width // 2, height))
    return encode(image)


def request(operation: Operation, *images: bytes, mask: bytes | None = None, **fields: Any) -> ImageRequest:
    extra = {"similarity_strength": fields.pop("similarity_strength")} if "similarity_strength" in fields else {}
    return ImageRequest(
        prompt=fields.pop("prompt", "a red hat" if operation is Operation.EDIT else ""),
        model=fields.pop("model", NOVA),
        operation=operation,
        images=tuple(input_image(data, param="image") for data in images),
        mask=input_image(mask, param="mask") if mask else None,
        extra=extra,
        **fields,
    )


def decoded(value: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(value)))


def sent(emulator: BedrockEmulator) -> dict[str, Any]:
    body = emulator.requests[-1].json
    assert isinstance(body, dict)
    return body


async def refused(adapter: BedrockAdapter, req: ImageRequest, where: UpstreamTarget) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await adapter.generate(req, where)
    error = caught.value
    assert not any(secret in str(error) for secret in BEDROCK_SECRETS)
    return error


# -- what each model can do ---------------------------------------------------------------------------


def test_nova_and_titan_edit_and_vary_stability_only_generates() -> None:
    adapter = BedrockAdapter()
    assert adapter.operations(NOVA) == frozenset(Operation)
    assert adapter.operations(TITAN) == frozenset(Operation)
    assert adapter.operations(SD35) == {Operation.GENERATE}


# -- inpainting ---------------------------------------------------------------------------------------


async def test_an_edit_with_a_mask_is_a_nova_inpainting_with_the_mask_turned_black_where_to_edit(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.EDIT, photo(), mask=openai_mask(), n=2, negative_prompt="blur", seed=5, quality="hd")
    result = await adapter.generate(req, target())
    body = sent(bedrock_emulator)
    assert body["taskType"] == "INPAINTING"
    params = body["inPaintingParams"]
    assert set(params) == {"image", "maskImage", "text", "negativeText"}
    assert (params["text"], params["negativeText"]) == ("a red hat", "blur")
    # No size: an inpainting has the input image's size.
    assert body["imageGenerationConfig"] == {"numberOfImages": 2, "quality": "premium", "seed": 5}
    mask = decoded(params["maskImage"]).convert("RGB")
    assert mask.size == (512, 384)
    assert mask.getpixel((10, 10)) == (0, 0, 0)  # transparent in OpenAI's mask: to edit, black for Nova
    assert mask.getpixel((500, 10)) == (255, 255, 255)  # opaque: kept, white
    assert len(result.images) == 2
    assert all((image.provider, image.model, image.size) == ("bedrock", NOVA, "512x384") for image in result.images)
    assert result.translations == ("quality=hd->premium",)


async def test_a_partly_transparent_mask_is_thresholded_to_pure_black_and_white(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    soft = Image.new("RGBA", (512, 384), (0, 0, 0, 255))
    soft.paste((0, 0, 0, 40), (0, 0, 100, 384))  # mostly transparent: edited
    soft.paste((0, 0, 0, 200), (100, 0, 200, 384))  # mostly opaque: kept
    await adapter.generate(request(Operation.EDIT, photo(), mask=encode(soft)), target())
    mask = decoded(sent(bedrock_emulator)["inPaintingParams"]["maskImage"]).convert("RGB")
    assert {colour for _, colour in mask.getcolors() or []} == {(0, 0, 0), (255, 255, 255)}
    assert mask.getpixel((50, 5)) == (0, 0, 0) and mask.getpixel((150, 5)) == (255, 255, 255)


async def test_an_image_whose_alpha_marks_the_area_gives_the_mask_and_is_sent_flattened(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    image = Image.new("RGBA", (512, 384), (40, 90, 160, 255))
    image.paste((0, 0, 0, 0), (0, 0, 128, 128))
    await adapter.generate(request(Operation.EDIT, encode(image)), target())
    params = sent(bedrock_emulator)["inPaintingParams"]
    assert decoded(params["image"]).mode == "RGB"  # Nova refuses transparent pixels
    mask = decoded(params["maskImage"]).convert("RGB")
    assert mask.getpixel((5, 5)) == (0, 0, 0) and mask.getpixel((300, 300)) == (255, 255, 255)


async def test_a_size_other_than_the_images_is_noted_and_strict_mode_refuses_it(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.EDIT, photo(), mask=openai_mask(), size="1024x1024")
    result = await adapter.generate(req, target())
    assert "width" not in sent(bedrock_emulator)["imageGenerationConfig"]
    assert result.translations == ("size=1024x1024->512x384 (the input image's size)",)
    calls = len(bedrock_emulator.requests)
    error = await refused(adapter, req, target(strict=True))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "size")
    assert len(bedrock_emulator.requests) == calls


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (request(Operation.EDIT, photo(), photo(), mask=openai_mask()), "image"),  # inpaints one image
        (request(Operation.EDIT, photo(256, 256), mask=openai_mask(256, 256)), "image"),  # under 320 a side
        (request(Operation.EDIT, photo(), mask=photo(mode="RGBA")), "mask"),  # nothing transparent: nothing to edit
        (request(Operation.EDIT, photo(), mask=openai_mask(), background="transparent"), "background"),
        (request(Operation.EDIT, photo(), mask=openai_mask(), prompt="x" * 1025), "prompt"),
        (request(Operation.EDIT, photo(), mask=openai_mask(), similarity_strength=0.5), "similarity_strength"),
        (request(Operation.EDIT, photo(), mask=openai_mask(), model=SD35), "model"),
    ],
)
async def test_what_nova_cannot_inpaint_is_refused_naming_the_field_before_any_call(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator, req: ImageRequest, param: str
) -> None:
    error = await refused(adapter, req, target())
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert bedrock_emulator.requests == []


# -- variations ---------------------------------------------------------------------------------------


async def test_a_variation_is_an_image_variation_sized_as_a_generation(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.VARIATION, photo(fmt="JPEG"), model=TITAN, n=3, size="1792x1024")
    result = await adapter.generate(req, target())
    body = sent(bedrock_emulator)
    assert body["taskType"] == "IMAGE_VARIATION"
    assert list(body["imageVariationParams"]) == ["images"]  # no text: a plain variation
    assert decoded(body["imageVariationParams"]["images"][0]).format == "JPEG"  # a JPEG goes as it is
    assert body["imageGenerationConfig"] == {"numberOfImages": 3, "width": 1152, "height": 640}
    assert len(result.images) == 3 and result.images[0].size == "1152x640"
    assert result.translations == ("size=1792x1024->1152x640",)


async def test_similarity_strength_reaches_nova_and_its_range_is_checked(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    webp = photo(fmt="WEBP")
    await adapter.generate(request(Operation.VARIATION, webp, similarity_strength=0.9), target())
    params = sent(bedrock_emulator)["imageVariationParams"]
    assert params["similarityStrength"] == 0.9
    assert decoded(params["images"][0]).format == "PNG"  # WebP is not taken: converted
    error = await refused(adapter, request(Operation.VARIATION, webp, similarity_strength=0.1), target())
    assert error.param == "similarity_strength"


async def test_similarity_strength_from_a_multipart_form_is_read_as_the_number_it_spells(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    # /v1/images/edits passes a field it does not model on as an extra, as form text.
    await adapter.generate(request(Operation.EDIT, photo(), similarity_strength="0.4"), target())
    assert sent(bedrock_emulator)["imageVariationParams"]["similarityStrength"] == 0.4
    for bad in ("strong", "nan", "5"):
        error = await refused(adapter, request(Operation.EDIT, photo(), similarity_strength=bad), target())
        assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "similarity_strength")


async def test_an_edit_without_a_mask_is_a_variation_guided_by_the_prompt_and_strict_mode_refuses_it(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.EDIT, photo(), photo(fmt="JPEG"), size="1024x1024")
    result = await adapter.generate(req, target())
    body = sent(bedrock_emulator)
    assert body["taskType"] == "IMAGE_VARIATION"
    assert body["imageVariationParams"]["text"] == "a red hat"
    assert len(body["imageVariationParams"]["images"]) == 2
    assert result.translations[0].startswith("operation=edit->IMAGE_VARIATION")
    error = await refused(adapter, req, target(strict=True))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "mask")
    assert "strict" in str(error)


# -- Titan ------------------------------------------------------------------------------------------


def test_titan_inpainting_body_has_the_converted_mask_and_no_size() -> None:
    # The body mapping alone: the same INPAINTING body as Nova's, the mask black where OpenAI's is clear.
    req = request(Operation.EDIT, photo(), mask=openai_mask(), model=TITAN, n=2, negative_prompt="blur", cfg_scale=7.5)
    inputs = prepare_inputs(req, MODELS[TITAN])
    assert inputs.task == INPAINTING
    assert check_edit(req, inputs.task, MODELS[TITAN], strict=True) == ()
    body = edit_body(req, inputs, None)
    assert body["taskType"] == "INPAINTING"
    assert set(body["inPaintingParams"]) == {"image", "maskImage", "text", "negativeText"}  # never returnMask
    assert body["imageGenerationConfig"] == {"numberOfImages": 2, "cfgScale": 7.5}
    mask = decoded(body["inPaintingParams"]["maskImage"]).convert("RGB")
    assert mask.getpixel((10, 10)) == (0, 0, 0) and mask.getpixel((500, 10)) == (255, 255, 255)


def test_an_edit_without_a_prompt_sends_no_text_and_titan_removes_what_the_mask_covers() -> None:
    req = request(Operation.EDIT, photo(), mask=openai_mask(), model=TITAN, prompt="")
    body = edit_body(req, prepare_inputs(req, MODELS[TITAN]), None)
    assert "text" not in body["inPaintingParams"]


async def test_an_edit_with_a_mask_on_titan_is_a_titan_inpainting_the_emulator_accepts(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.EDIT, photo(1408, 768), mask=openai_mask(1408, 768), model=TITAN, seed=7)
    result = await adapter.generate(req, target())
    call = bedrock_emulator.requests[-1]
    assert call.path.endswith("/model/amazon.titan-image-generator-v2%3A0/invoke")
    body = sent(bedrock_emulator)
    assert body["taskType"] == "INPAINTING"
    assert body["inPaintingParams"]["text"] == "a red hat"
    assert body["imageGenerationConfig"] == {"numberOfImages": 1, "seed": 7}
    assert [(image.model, image.size) for image in result.images] == [(TITAN, "1408x768")]


async def test_a_titan_edit_without_a_mask_is_a_variation_guided_by_the_prompt_and_strict_mode_refuses_it(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator
) -> None:
    req = request(Operation.EDIT, photo(), model=TITAN, size="1024x1024")
    result = await adapter.generate(req, target())
    body = sent(bedrock_emulator)
    assert body["taskType"] == "IMAGE_VARIATION"
    assert body["imageVariationParams"]["text"] == "a red hat"
    assert result.translations[0].startswith("operation=edit->IMAGE_VARIATION")
    calls = len(bedrock_emulator.requests)
    error = await refused(adapter, req, target(strict=True))
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "mask")
    assert "Titan" in str(error) and "strict" in str(error)
    assert len(bedrock_emulator.requests) == calls


@pytest.mark.parametrize(
    ("req", "param"),
    [
        # Titan edits images up to 1408 a side: inpainting and variation alike.
        (request(Operation.EDIT, photo(1536, 768), mask=openai_mask(1536, 768), model=TITAN), "image"),
        (request(Operation.EDIT, photo(1536, 768), model=TITAN), "image"),
        (request(Operation.VARIATION, photo(768, 1536), model=TITAN), "image"),
        (request(Operation.EDIT, photo(), photo(), mask=openai_mask(), model=TITAN), "image"),
        (request(Operation.EDIT, photo(), mask=openai_mask(), model=TITAN, prompt="x" * 513), "prompt"),
        (request(Operation.EDIT, photo(), mask=openai_mask(), model=TITAN, style="PHOTOREALISM"), "style"),
    ],
)
async def test_what_titan_cannot_edit_is_refused_naming_the_field_before_any_call(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator, req: ImageRequest, param: str
) -> None:
    error = await refused(adapter, req, target())
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert bedrock_emulator.requests == []


# -- the emulator checks bodies as Bedrock does ---------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def black_white(width: int = 512, height: int = 384, grey: bool = False) -> bytes:
    image = Image.new("RGB", (width, height), (255, 255, 255))
    image.paste((128, 128, 128) if grey else (0, 0, 0), (0, 0, 64, 64))
    return encode(image)


def inpainting(**params: Any) -> dict[str, Any]:
    return {"taskType": "INPAINTING", "inPaintingParams": {"image": b64(photo()), "text": "a hat", **params}}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (inpainting(maskImage=b64(black_white(grey=True))), "pure black and pure white"),
        (inpainting(maskImage=b64(black_white(640, 384))), "same dimensions"),
        (inpainting(maskImage=b64(black_white()), image="not base64!"), "base64"),
        (inpainting(), "exactly one of [maskImage, maskPrompt]"),
        (inpainting(maskImage=b64(black_white()), maskPrompt="the sky"), "exactly one of"),
        (inpainting(maskImage=b64(black_white()), image=b64(photo(fmt="WEBP"))), "PNG or JPEG"),
        ({"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": []}}, "1 to 5"),
        (
            {
                "taskType": "IMAGE_VARIATION",
                "imageVariationParams": {"images": [b64(photo())], "similarityStrength": 2},
            },
            "0.2 to 1.0",
        ),
    ],
)
def test_the_emulator_refuses_bad_edit_bodies(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BedrockError) as caught:
        parse_body(NOVA, body)
    assert caught.value.status == 400 and message in caught.value.message


def test_the_emulator_refuses_transparent_input_pixels() -> None:
    see_through = encode(Image.new("RGBA", (512, 384), (0, 0, 0, 0)))
    with pytest.raises(BedrockError, match="transparent"):
        parse_body(NOVA, inpainting(image=b64(see_through), maskImage=b64(black_white())))


def test_the_emulator_takes_titan_inpainting_with_a_mask_or_a_mask_prompt() -> None:
    assert parse_body(TITAN, inpainting(maskImage=b64(black_white()), returnMask=False)).width == 512
    assert parse_body(TITAN, inpainting(maskPrompt="the sky")).height == 384


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (inpainting(), "exactly one of [maskImage, maskPrompt]"),
        (inpainting(maskImage=b64(black_white(640, 384))), "same dimensions"),
        (inpainting(maskImage=b64(black_white(grey=True))), "pure black and pure white"),
        (inpainting(maskImage=b64(black_white()), text="x" * 513), "maxLength: 512"),
        (inpainting(maskImage=b64(black_white()), returnMask="yes"), "returnMask"),
        (inpainting(maskImage=b64(black_white()), style="PHOTOREALISM"), "extraneous key [style]"),
        (inpainting(image=b64(photo(1536, 768)), maskImage=b64(black_white(1536, 768))), "1408"),
        ({"taskType": "INPAINTING", "inPaintingParams": {"maskPrompt": "the sky"}}, "required key [image]"),
        ({"taskType": "IMAGE_VARIATION", "imageVariationParams": {"images": [b64(photo(768, 1536))]}}, "1408"),
    ],
)
def test_the_emulator_refuses_bad_titan_edit_bodies(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BedrockError) as caught:
        parse_body(TITAN, body)
    assert caught.value.status == 400 and message in caught.value.message


# -- images too large to decode -----------------------------------------------------------------------


def huge_png(width: int, height: int) -> bytes:
    """A few hundred bytes claiming ``width`` x ``height`` RGBA pixels: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    "req",
    [
        request(Operation.EDIT, huge_png(20_000, 20_000), mask=huge_png(20_000, 20_000)),  # PIL's bomb error
        request(Operation.EDIT, huge_png(10_000, 10_000), mask=huge_png(10_000, 10_000)),  # PIL's warning
        request(Operation.EDIT, huge_png(20_000, 20_000)),  # the image's own alpha
        request(Operation.VARIATION, huge_png(20_000, 20_000)),  # flattened before it is sent
    ],
)
async def test_an_image_too_large_for_bedrock_is_refused_naming_it_before_it_is_decoded(
    adapter: BedrockAdapter, bedrock_emulator: BedrockEmulator, req: ImageRequest
) -> None:
    error = await refused(adapter, req, target())
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, "image")
    assert "20000x20000" in str(error) or "10000x10000" in str(error)
    assert bedrock_emulator.requests == []
