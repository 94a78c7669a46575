"""Maps an ImageRequest to the body of one FLUX task, refusing what the model won't take.

Field mapping (one task per image):

| ImageRequest | BFL |
|---|---|
| prompt | ``prompt`` |
| size (FLUX.2, FLUX 1.1) | ``width``/``height``, the nearest the model makes (1) |
| size / aspect_ratio (Ultra, Kontext) | ``aspect_ratio``, the nearest of the model's ratios (1) |
| n | n tasks at once (1); a set seed becomes seed, seed+1, ... so the images differ |
| seed, output_format (``jpeg``/``png``) | sent |
| cfg_scale | ``guidance`` on flux-2-flex, refused elsewhere |
| extra BFL parameters (``safety_tolerance``, ``steps``, ``raw``, ...) | sent where the model takes them (2) |
| quality, style, user, negative_prompt, style_preset, background, output_compression, moderation | refused |
| response_format | not sent: BFL always answers a signed URL, fetched into bytes unless the caller asked for ``url`` |

(1) Translated before the call by ``kit.translation.translate`` and reported; refused in strict mode.
(2) The models that take each are listed in ``models``; values are checked here first.
Every refusal is a BAD_REQUEST naming the parameter, raised before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.black_forest_labs.models import FluxModel
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.param_ranges import check_integer, check_number
from imagegateway_server.providers.kit.sizes import requested_size

OUTPUT_FORMATS = ("jpeg", "png")
MAX_SEED = 2**32 - 1
_FIELDS = frozenset({"model", "n", "size", "aspect_ratio", "seed", "output_format", "cfg_scale"})


def check_params(request: ImageRequest, model: FluxModel) -> None:
    """Refuses, naming it, a parameter ``model`` does not take or a value it cannot have."""
    for name, value in request.set_fields().items():
        if name in _FIELDS or name in model.params:
            _check_value(name, value, model)
            continue
        raise refuse_parameter(PROVIDER, name, f"is not supported by model {model.name!r}", "unknown_parameter")
    if request.size is not None and model.by_ratio:
        raise refuse_parameter(PROVIDER, "size", f"model {model.name!r} is sized by aspect_ratio only")
    if request.aspect_ratio is not None and not model.by_ratio:
        raise refuse_parameter(
            PROVIDER, "aspect_ratio", f"is not supported by model {model.name!r}; send size", "unknown_parameter"
        )
    if request.cfg_scale is not None:
        if "guidance" not in model.params:
            raise refuse_parameter(
                PROVIDER, "cfg_scale", f"is not supported by model {model.name!r}", "unknown_parameter"
            )
        if "guidance" in request.extra:
            raise refuse_parameter(PROVIDER, "cfg_scale", "and guidance are the same parameter; send one of them")


def _check_value(name: str, value: Any, model: FluxModel) -> None:
    if name == "safety_tolerance":
        check_integer(PROVIDER, name, value, 0, model.max_safety_tolerance)
    elif name == "seed":
        check_integer(PROVIDER, name, value, 0, MAX_SEED)
    elif name == "steps":
        check_integer(PROVIDER, name, value, 1, 50)
    elif name in ("guidance", "cfg_scale"):
        check_number(PROVIDER, name, value, 1.5, 10.0)
    elif name == "image_prompt_strength":
        check_number(PROVIDER, name, value, 0.0, 1.0)
    elif name in ("prompt_upsampling", "raw"):
        if not isinstance(value, bool):
            raise refuse_parameter(PROVIDER, name, "must be true or false", "invalid_type")
    elif name == "output_format":
        if value not in OUTPUT_FORMATS:
            raise refuse_parameter(PROVIDER, name, f"must be one of {', '.join(OUTPUT_FORMATS)}, got {value!r}")
    elif name == "image_prompt" or name.startswith("input_image"):
        if not isinstance(value, str) or not value:
            raise refuse_parameter(PROVIDER, name, "must be an image URL or base64 string", "invalid_type")


def task_bodies(request: ImageRequest, model: FluxModel) -> list[dict[str, Any]]:
    """One task body per image; ``request`` is translated and checked (``check_params``)."""
    base: dict[str, Any] = {"prompt": request.prompt}
    if request.size is not None and request.size != "auto":
        width, height = requested_size(PROVIDER, request.size)
        base.update(width=width, height=height)
    if request.aspect_ratio is not None:
        base["aspect_ratio"] = request.aspect_ratio
    if request.output_format is not None:
        base["output_format"] = request.output_format
    if request.cfg_scale is not None:
        base["guidance"] = request.cfg_scale
    for name, value in request.extra.items():
        base[name] = int(value) if name in ("safety_tolerance", "steps") else value
    bodies = []
    for index in range(request.n):
        body = dict(base)
        if request.seed is not None:
            body["seed"] = (request.seed + index) % (MAX_SEED + 1)
        bodies.append(body)
    return bodies
