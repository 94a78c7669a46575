"""Bedrock's answers to OpenAI's edits and variations: ``INPAINTING`` and ``IMAGE_VARIATION``.

| OpenAI | Nova Canvas and Titan Image Generator v2 |
|---|---|
| edit with a mask, or of a PNG whose alpha marks the area | ``INPAINTING`` (``inPaintingParams``) |
| edit without a mask, of an opaque image | ``IMAGE_VARIATION`` with the prompt as ``text`` (1) |
| variation | ``IMAGE_VARIATION`` without text |

Both models take the same task bodies; what differs is held by their ``BedrockModel``: the prompt
limit (Nova 1024 characters, Titan 512) and the input images each task takes (``inpaint_input``,
``vary_input``: Nova inpaints images of the sizes it generates, Titan edits images up to 1408 a side).

``INPAINTING`` sends ``image``, ``maskImage``, ``text`` (the prompt) and ``negativeText``; never
Titan's ``returnMask``, whose mask would come back among the images. The mask is converted, never
passed on as it came: OpenAI marks the area to edit with alpha 0, Nova and Titan with pure black on
pure white (``kit.masks``; AWS's Nova "Image generation and editing" page and Titan's "Amazon Titan
Image Generator G1 models" page: "(0 0 0) is a pixel inside the mask"). The answer has the input
image's size, so ``size`` is not sent and a different one asked is noted as a translation (refused
in strict mode). It edits one image.

``IMAGE_VARIATION`` sends ``images`` (1-5), optional ``text``/``negativeText`` and
``similarityStrength`` (0.2-1.0, taken from the ``similarity_strength`` extra parameter; AWS's
default 0.7 otherwise); its ``imageGenerationConfig`` takes the size like a generation.

Input images go as base64 PNG or JPEG, 8 bits per channel, without transparent pixels (AWS's
"input images" rules), so a WebP, a GIF or a PNG with an alpha channel is flattened to an RGB PNG
first; an image whose alpha marks the area to edit gives its alpha as the mask before that.

(1) Inpainting needs a mask (or a ``maskPrompt`` naming an object, which an OpenAI edit does not
carry); an edit without one is what AWS documents IMAGE_VARIATION with a text prompt for,
restyling the images by the prompt. This is noted as a translation and refused in strict mode.
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import pybase64
from PIL import Image, UnidentifiedImageError

from imagegateway_server.domain.image_inputs import InputImage, Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.bedrock.models import (
    ANY_INPUT,
    MAX_IMAGES_PER_CALL,
    BedrockModel,
    Family,
    InputRule,
)
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.masks import alpha_to_black_marks_edit

INPAINTING = "INPAINTING"
IMAGE_VARIATION = "IMAGE_VARIATION"
MIN_SIMILARITY = 0.2
MAX_SIMILARITY = 1.0
SIMILARITY_PARAM = "similarity_strength"
_STRICT = "strict mode refuses to translate it"
_SENT_AS_IS = ("image/png", "image/jpeg")

# What an edit or variation takes besides the images, mask and prompt.
_ACCEPTED = frozenset(
    {"model", "n", "size", "quality", "seed", "negative_prompt", "cfg_scale", "output_format", SIMILARITY_PARAM}
)


def edit_operations(family: Family) -> frozenset[Operation]:
    """What a model of ``family`` makes: Nova and Titan edit and vary, Stability only generates."""
    if family in (Family.NOVA, Family.TITAN):
        return frozenset(Operation)
    return frozenset({Operation.GENERATE})


@dataclasses.dataclass(frozen=True, slots=True)
class PreparedInputs:
    """The images as Bedrock takes them (base64), the converted mask, and the task they make."""

    task: str
    images: tuple[str, ...]
    mask: str | None = None


def prepare_inputs(request: ImageRequest, model: BedrockModel) -> PreparedInputs:
    """Converts the request's images and mask for ``model`` (CPU work: run it off the event loop)."""
    first = request.images[0]
    mask_png: bytes | None = None
    if request.operation is Operation.EDIT:
        if request.mask is not None or first.has_alpha:
            # An inpainting: the model's limits are checked from the header before the mask is decoded.
            _check_input(first, model.inpaint_input, f"{model.label} inpaints")
        if request.mask is not None:
            mask_png = alpha_to_black_marks_edit(request.mask.data, provider=PROVIDER)
            if mask_png is None:
                raise refuse_parameter(PROVIDER, "mask", "has no transparent pixels: it marks nothing to edit")
        elif first.has_alpha:
            mask_png = alpha_to_black_marks_edit(first.data, provider=PROVIDER, param="image")
    task = INPAINTING if mask_png is not None else IMAGE_VARIATION
    if task == IMAGE_VARIATION:
        # Checked from the headers before any image is decoded to be flattened.
        for image in request.images:
            _check_input(image, model.vary_input, f"{model.label} varies")
    images = tuple(_encoded(image) for image in request.images)
    return PreparedInputs(task, images, _b64(mask_png) if mask_png is not None else None)


def check_edit(request: ImageRequest, task: str, model: BedrockModel, *, strict: bool) -> tuple[str, ...]:
    """Refuses, naming it, what ``model``'s task cannot take; returns the translations made for it."""
    for name in request.set_fields():
        if name not in _ACCEPTED:
            raise refuse_parameter(PROVIDER, name, f"is not supported by Bedrock's {task} task", "unknown_parameter")
    similarity = request.extra.get(SIMILARITY_PARAM)
    if similarity is not None:
        if task != IMAGE_VARIATION:
            raise refuse_parameter(PROVIDER, SIMILARITY_PARAM, "applies to image variations only")
        similarity = _number(similarity)
        if similarity is None:
            raise refuse_parameter(PROVIDER, SIMILARITY_PARAM, "must be a number")
        if not MIN_SIMILARITY <= similarity <= MAX_SIMILARITY:
            raise refuse_parameter(PROVIDER, SIMILARITY_PARAM, f"must be from {MIN_SIMILARITY} to {MAX_SIMILARITY}")
    notes: list[str] = []
    if task == INPAINTING:
        if len(request.images) != 1:
            raise refuse_parameter(PROVIDER, "image", f"{model.label} inpaints one image, got {len(request.images)}")
        image = request.images[0]
        _check_input(image, model.inpaint_input, f"{model.label} inpaints")
        if request.size not in (None, "auto", f"{image.width}x{image.height}"):
            if strict:
                raise refuse_parameter(PROVIDER, "size", f"an inpainting has the input image's size; {_STRICT}")
            notes.append(f"size={request.size}->{image.width}x{image.height} (the input image's size)")
        return tuple(notes)
    if len(request.images) > MAX_IMAGES_PER_CALL:
        raise refuse_parameter(
            PROVIDER, "image", f"an image variation takes 1 to {MAX_IMAGES_PER_CALL} images, got {len(request.images)}"
        )
    for image in request.images:
        _check_input(image, model.vary_input, f"{model.label} varies")
    if request.operation is Operation.EDIT:
        if strict:
            raise refuse_parameter(
                PROVIDER, "mask", f"{model.label} edits without a mask only as an image variation; {_STRICT}"
            )
        notes.append("operation=edit->IMAGE_VARIATION (no mask: the prompt restyles the images)")
    return tuple(notes)


def _number(value: Any) -> float | None:
    """A number, or the text of one (a multipart form's extra field); None for anything else."""
    if isinstance(value, str) and len(value) < 32:
        try:
            return float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_input(image: InputImage, rule: InputRule, what: str) -> None:
    # AWS's input image limits for the model and task, checked here so the refusal names the field.
    if not rule.accepts(image.width, image.height):
        raise refuse_parameter(
            PROVIDER, "image", f"is {image.width}x{image.height}; {what} images with {rule.describe()}"
        )


def edit_body(request: ImageRequest, inputs: PreparedInputs, size: tuple[int, int] | None) -> dict[str, Any]:
    """The INPAINTING or IMAGE_VARIATION body; ``request`` is translated, ``size`` None for inpainting."""
    config: dict[str, Any] = {"numberOfImages": request.n}
    if size is not None:
        config["width"], config["height"] = size
    if request.quality is not None:
        config["quality"] = request.quality
    if request.cfg_scale is not None:
        config["cfgScale"] = request.cfg_scale
    if request.seed is not None:
        config["seed"] = request.seed
    params: dict[str, Any]
    if inputs.task == INPAINTING:
        params = {"image": inputs.images[0], "maskImage": inputs.mask}
        if request.prompt:
            params["text"] = request.prompt
        if request.negative_prompt:
            params["negativeText"] = request.negative_prompt
        return {"taskType": INPAINTING, "inPaintingParams": params, "imageGenerationConfig": config}
    params = {"images": list(inputs.images)}
    if request.operation is Operation.EDIT and request.prompt:
        params["text"] = request.prompt
    if request.negative_prompt:
        params["negativeText"] = request.negative_prompt
    similarity = request.extra.get(SIMILARITY_PARAM)
    if similarity is not None:
        params["similarityStrength"] = float(similarity)
    return {"taskType": IMAGE_VARIATION, "imageVariationParams": params, "imageGenerationConfig": config}


def _encoded(image: InputImage) -> str:
    """An input image as base64 of a PNG or JPEG without an alpha channel."""
    if image.mime_type in _SENT_AS_IS and not image.has_alpha:
        return _b64(image.data)
    # Decoded in full below: a small file can claim a huge canvas, and Bedrock takes no side over 4096.
    _check_input(image, ANY_INPUT, "Bedrock takes")
    try:
        with Image.open(io.BytesIO(image.data)) as opened:
            rgb = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise refuse_parameter(PROVIDER, "image", "is not an image the gateway can read") from None
    out = io.BytesIO()
    rgb.save(out, "PNG")
    return _b64(out.getvalue())


def _b64(data: bytes) -> str:
    return pybase64.b64encode(data).decode("ascii")
