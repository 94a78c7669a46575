"""Maps an ImageRequest to Fireworks' FLUX ``text_to_image`` body, one per image, refusing what it does not take.

| ImageRequest | Fireworks |
|---|---|
| prompt | ``prompt`` |
| size | ``aspect_ratio`` (translated to the nearest, ``models``) |
| aspect_ratio | ``aspect_ratio`` (one of the model's) |
| n | n calls (one image each); a set seed becomes seed, seed+1, ... |
| seed | ``seed`` |
| cfg_scale | ``guidance_scale`` |
| quality | ``num_inference_steps`` (``models``; translated before the body is built) |
| output_format | ``png`` (default) or ``jpeg``: the ``Accept`` header, not a body field |
| extra ``guidance_scale``, ``num_inference_steps`` | sent |
| style, negative_prompt, user, background, moderation, output_compression, style_preset, anything else | refused |

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.fireworks.models import (
    ASPECT_RATIOS,
    ASYNC_MODELS,
    KNOWN_MODELS,
    model_spec,
    short_name,
)
from imagegateway_server.providers.kit.errors import refuse_parameter

ACCEPTED = frozenset(
    {
        "model",
        "n",
        "size",
        "aspect_ratio",
        "seed",
        "cfg_scale",
        "output_format",
        "guidance_scale",
        "num_inference_steps",
    }
)
ACCEPT_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
MAX_SEED = 4_294_967_295


def check_model(model: str) -> None:
    """Refuses, naming ``model``, a model this adapter does not serve."""
    name = short_name(model)
    if name in ASYNC_MODELS:
        raise refuse_parameter(
            PROVIDER,
            "model",
            f"{model!r} is asynchronous on Fireworks (submit and get_result), which this gateway does not poll "
            "there; use it through black-forest-labs",
            "unsupported_value",
        )
    if model_spec(model) is None:
        raise refuse_parameter(
            PROVIDER,
            "model",
            f"{model!r} is not a Fireworks FLUX workflow model; expected one of {', '.join(KNOWN_MODELS)}",
        )


def check_request(request: ImageRequest, model: str) -> None:
    """Refuses, naming it, a model this adapter does not serve or a parameter the model does not take."""
    check_model(model)
    for field in request.set_fields():
        if field not in ACCEPTED:
            raise refuse_parameter(PROVIDER, field, f"is not supported by model {model!r}", "unknown_parameter")
    if request.output_format is not None and request.output_format not in ACCEPT_BY_FORMAT:
        raise refuse_parameter(PROVIDER, "output_format", "must be one of png, jpeg")
    if request.aspect_ratio is not None and not ASPECT_RATIOS.allows(request.aspect_ratio):
        raise refuse_parameter(PROVIDER, "aspect_ratio", f"must be {ASPECT_RATIOS.describe}")
    if request.cfg_scale is not None and "guidance_scale" in request.extra:
        raise refuse_parameter(PROVIDER, "cfg_scale", "and guidance_scale are the same setting on Fireworks; send one")


def accept_header(request: ImageRequest) -> str:
    """The ``Accept`` that chooses the image format Fireworks answers with."""
    return ACCEPT_BY_FORMAT[request.output_format or "png"]


def bodies(request: ImageRequest) -> list[dict[str, Any]]:
    """One JSON body per image to generate (``request`` already translated: a size is its ratio by now)."""
    out = []
    for index in range(request.n):
        seed = request.seed
        if seed:
            # The same seed n times would make n identical images.
            seed = (seed + index - 1) % MAX_SEED + 1
        optional: dict[str, Any] = {
            "aspect_ratio": request.aspect_ratio,
            "seed": seed,
            "guidance_scale": request.cfg_scale
            if request.cfg_scale is not None
            else request.extra.get("guidance_scale"),
            "num_inference_steps": request.extra.get("num_inference_steps"),
        }
        out.append({"prompt": request.prompt, **{k: v for k, v in optional.items() if v is not None}})
    return out
