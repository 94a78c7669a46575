"""FLUX edits on BFL: OpenAI's edit images become ``input_image``, ``input_image_2``, ... of a Kontext or FLUX.2 task.

| OpenAI edit | BFL task body |
|---|---|
| ``prompt`` | ``prompt`` (the edit instruction) |
| ``image`` / ``image[]`` | ``input_image``, then ``input_image_2``.. as base64: Kontext takes 4, FLUX.2 8 (1) |
| ``mask`` | refused, naming ``mask`` (2) |
| ``size`` | Kontext: the nearest ``aspect_ratio`` (none sent: the input image's ratio); FLUX.2: ``width``/``height`` |
| ``seed``, ``output_format``, ``safety_tolerance``, ``prompt_upsampling`` | sent as for a generation |

(1) BFL's reference lists ``input_image_2``.. on FLUX.2 (up to 8) and Kontext's multi-reference
slots up to ``input_image_4``. More images than the model's slots are refused naming ``image``;
an ``input_image*`` extra parameter beside uploaded images is refused as ambiguous.
(2) Kontext and FLUX.2 edit by the prompt alone and take no mask. Dropping the mask would let the
whole image change where the caller asked for one area, so an edit with a mask is refused in every
mode (a BAD_REQUEST attempt that says so; a fallback moves on to a target that inpaints).
Variations are not offered: FLUX has no prompt-free variation, so the router skips BFL for them.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pybase64

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.black_forest_labs.models import FluxModel
from imagegateway_server.providers.kit.errors import refuse_parameter

INPUT_IMAGE = "input_image"
_GENERATE_ONLY = frozenset({Operation.GENERATE})
_GENERATE_AND_EDIT = frozenset({Operation.GENERATE, Operation.EDIT})


def input_slots(model: FluxModel) -> tuple[str, ...]:
    """The model's input image fields in order: ``input_image``, ``input_image_2``, ..."""
    count = sum(1 for name in model.params if name.startswith(INPUT_IMAGE))
    return tuple(INPUT_IMAGE if index == 1 else f"{INPUT_IMAGE}_{index}" for index in range(1, count + 1))


def edit_operations(model: FluxModel | None) -> frozenset[Operation]:
    """Edits where the model takes input images (Kontext, FLUX.2); generation everywhere."""
    return _GENERATE_AND_EDIT if model is not None and INPUT_IMAGE in model.params else _GENERATE_ONLY


def with_input_images(request: ImageRequest, model: FluxModel) -> ImageRequest:
    """The edit as a task request: its images in the model's ``input_image`` fields (base64)."""
    if request.mask is not None:
        raise refuse_parameter(
            PROVIDER,
            "mask",
            f"{model.name!r} edits by the prompt alone and takes no mask; send the edit without a mask "
            "or route it to a provider that inpaints",
            "unsupported_parameter",
        )
    slots = input_slots(model)
    if not slots:
        raise refuse_parameter(PROVIDER, "model", f"{model.name!r} cannot make image edits", "unsupported_operation")
    if len(request.images) > len(slots):
        raise refuse_parameter(
            PROVIDER, "image", f"{model.name!r} takes at most {len(slots)} input images, got {len(request.images)}"
        )
    given = sorted(name for name in request.extra if name.startswith(INPUT_IMAGE))
    if given:
        raise refuse_parameter(PROVIDER, given[0], "is set by the uploaded images of an edit; send it as an image")
    extra = dict(request.extra)
    for slot, image in zip(slots, request.images, strict=False):
        extra[slot] = pybase64.b64encode(image.data).decode("ascii")
    return dataclasses.replace(request, extra=MappingProxyType(extra))
