"""Maps an ImageRequest to a fal model's input, refusing what the model won't take.

| ImageRequest | fal |
|---|---|
| prompt | ``prompt`` |
| size | ``image_size: {width, height}``, the nearest the model makes (1) |
| aspect_ratio | ``image_size``: fal's preset for it (``16:9`` -> ``landscape_16_9``) |
| n | ``num_images`` (FLUX, up to 4); n calls on Recraft (1) |
| seed, output_format (``jpeg``/``png``) | sent (FLUX) |
| style | Recraft's ``style`` (one of its styles); refused on FLUX |
| cfg_scale | ``guidance_scale`` on ``fal-ai/flux/dev`` |
| extra ``steps`` | ``num_inference_steps`` where the model has it |
| extra fal inputs (``enable_safety_checker``, ``safety_tolerance``, ``colors``, ...) | sent where taken (2) |
| an edit's images (Kontext) | ``image_url`` or ``image_urls``, as base64 data URLs (``edit_images``) |
| size / aspect_ratio (Kontext) | ``aspect_ratio``, the nearest of Kontext's nine (1) |
| quality, user, negative_prompt, style_preset, background, output_compression, moderation | refused |

(1) Translated by ``kit.translation.translate`` and reported; refused in strict mode.
(2) ``models`` lists which model takes which; values are checked here. Refusals are BAD_REQUEST
naming the parameter, before any HTTP call.
"""

from __future__ import annotations

from typing import Any

import pybase64

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.fal.models import KONTEXT_RATIOS, PRESET_FOR_RATIO, PRESETS, FalModel
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.param_ranges import check_integer, check_number
from imagegateway_server.providers.kit.sizes import requested_size

OUTPUT_FORMATS = ("jpeg", "png")
ACCELERATIONS = ("none", "regular", "high")
MAX_SEED = 2**32 - 1
_FIELDS = frozenset({"model", "n", "size"})
_STEPS = "num_inference_steps"


def check_params(request: ImageRequest, model: FalModel) -> None:
    """Refuses, naming it, a parameter ``model`` does not take or a value it cannot have."""
    fields = request.set_fields()
    for name, value in fields.items():
        if name == "steps" and model.max_steps:
            name = _STEPS
        if name == "style" and "style" in model.params:
            continue  # translation checked it against the model's styles
        if name not in _FIELDS and name not in model.params:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model.id!r}", "unknown_parameter")
        _check_value(name, value, model)
    if "steps" in request.extra and _STEPS in request.extra:
        raise refuse_parameter(PROVIDER, "steps", f"and {_STEPS} are the same parameter; send one of them")
    if request.cfg_scale is not None and "guidance_scale" in request.extra:
        raise refuse_parameter(PROVIDER, "cfg_scale", "and guidance_scale are the same parameter; send one of them")
    sized = [name for name in ("size", "aspect_ratio", "image_size") if name in fields]
    if len(sized) > 1:
        raise refuse_parameter(PROVIDER, sized[-1], f"conflicts with {sized[0]}; send one of them")


def _check_value(name: str, value: Any, model: FalModel) -> None:
    if name == "seed":
        check_integer(PROVIDER, name, value, 0, MAX_SEED)
    elif name == _STEPS:
        check_integer(PROVIDER, name, value, 1, model.max_steps)
    elif name in ("guidance_scale", "cfg_scale"):
        check_number(PROVIDER, name, value, 1.0, 20.0)
    elif name == "safety_tolerance":
        check_integer(
            PROVIDER,
            name,
            int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value,
            1,
            6,
        )
    elif name == "enable_safety_checker":
        if not isinstance(value, bool):
            raise refuse_parameter(PROVIDER, name, "must be true or false", "invalid_type")
    elif name == "output_format" and value not in OUTPUT_FORMATS:
        raise refuse_parameter(PROVIDER, name, f"must be one of {', '.join(OUTPUT_FORMATS)}, got {value!r}")
    elif name == "acceleration" and value not in ACCELERATIONS:
        raise refuse_parameter(PROVIDER, name, f"must be one of {', '.join(ACCELERATIONS)}, got {value!r}")
    elif name == "enhance_prompt":
        if not isinstance(value, bool):
            raise refuse_parameter(PROVIDER, name, "must be true or false", "invalid_type")
    elif name == "aspect_ratio" and model.by_ratio:
        if not isinstance(value, str) or not KONTEXT_RATIOS.allows(value):
            raise refuse_parameter(PROVIDER, name, f"must be {KONTEXT_RATIOS.describe}, got {value!r}")
    elif name == "aspect_ratio" and value not in PRESET_FOR_RATIO:
        raise refuse_parameter(PROVIDER, name, f"must be one of {', '.join(PRESET_FOR_RATIO)}, got {value!r}")
    elif name == "image_size" and value not in PRESETS:
        raise refuse_parameter(PROVIDER, name, f"must be one of fal's presets {', '.join(PRESETS)}, got {value!r}")


def model_input(request: ImageRequest, model: FalModel) -> dict[str, Any]:
    """The input of one queue request (a checked, translated ``request``); ``n`` is the caller's to fan out
    when the model has no ``num_images``."""
    body: dict[str, Any] = {"prompt": request.prompt}
    if request.size is not None and request.size != "auto":
        width, height = requested_size(PROVIDER, request.size)
        body["image_size"] = {"width": width, "height": height}
    elif request.aspect_ratio is not None and model.by_ratio:
        body["aspect_ratio"] = request.aspect_ratio
    elif request.aspect_ratio is not None:
        body["image_size"] = PRESET_FOR_RATIO[request.aspect_ratio]
    if model.takes_n and request.n > 1:
        body["num_images"] = request.n
    if request.style is not None:
        body["style"] = request.style
    optional = {"seed": request.seed, "output_format": request.output_format, "guidance_scale": request.cfg_scale}
    body.update({k: v for k, v in optional.items() if v is not None})
    for name, value in request.extra.items():
        if name == "steps":
            body[_STEPS] = int(value)
        elif name == "safety_tolerance":
            body[name] = str(int(value))  # fal takes it as the string "1".."6"
        else:
            body[name] = value
    return body


def edit_images(request: ImageRequest, model: FalModel) -> dict[str, Any]:
    """A Kontext edit's images as its ``image_url`` (one) or ``image_urls`` (several), base64 data URLs;
    refused naming ``mask`` (Kontext edits by the prompt alone) or ``image`` (too many for the endpoint)."""
    if request.mask is not None:
        raise refuse_parameter(
            PROVIDER,
            "mask",
            f"{model.id!r} edits by the prompt alone and takes no mask; send the edit without a mask "
            "or route it to a provider that inpaints",
            "unsupported_parameter",
        )
    urls = [
        f"data:{image.mime_type};base64,{pybase64.b64encode(image.data).decode('ascii')}" for image in request.images
    ]
    if model.images_field == "image_url":
        if len(urls) != 1:
            raise refuse_parameter(
                PROVIDER, "image", f"{model.id!r} edits one image, got {len(urls)}; send several to {model.id}/multi"
            )
        return {"image_url": urls[0]}
    return {"image_urls": urls}
