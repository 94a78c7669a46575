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

FLUX Kontext (a task: ``kontext``) takes ``prompt``, ``aspect_ratio`` (or a size, translated), ``seed``,
``output_format`` (a body field there: ``png`` or ``jpeg``) and the extras ``safety_tolerance`` (0-6)
and ``prompt_upsampling`` (true or false); ``cfg_scale`` and the step count are refused. An edit on
Kontext sends its one image as ``input_image`` (base64, Fireworks' Kontext reference); a mask, or
more than one image, is refused naming it (Kontext edits by the prompt alone).

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.
"""

from __future__ import annotations

from typing import Any

import pybase64

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.fireworks.models import ASPECT_RATIOS, KNOWN_MODELS, is_kontext, model_spec
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
KONTEXT_ACCEPTED = frozenset(
    {"model", "n", "size", "aspect_ratio", "seed", "output_format", "safety_tolerance", "prompt_upsampling"}
)
MAX_SAFETY_TOLERANCE = 6
ACCEPT_BY_FORMAT = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg"}
MAX_SEED = 4_294_967_295


def check_model(model: str) -> None:
    """Refuses, naming ``model``, a model this adapter does not serve."""
    if model_spec(model) is None:
        raise refuse_parameter(
            PROVIDER,
            "model",
            f"{model!r} is not a Fireworks FLUX workflow model; expected one of {', '.join(KNOWN_MODELS)}",
        )


def check_request(request: ImageRequest, model: str) -> None:
    """Refuses, naming it, a model this adapter does not serve or a parameter the model does not take."""
    check_model(model)
    accepted = KONTEXT_ACCEPTED if is_kontext(model) else ACCEPTED
    for field in request.set_fields():
        if field not in accepted:
            raise refuse_parameter(PROVIDER, field, f"is not supported by model {model!r}", "unknown_parameter")
    if request.output_format is not None and request.output_format not in ACCEPT_BY_FORMAT:
        raise refuse_parameter(PROVIDER, "output_format", "must be one of png, jpeg")
    if request.aspect_ratio is not None and not ASPECT_RATIOS.allows(request.aspect_ratio):
        raise refuse_parameter(PROVIDER, "aspect_ratio", f"must be {ASPECT_RATIOS.describe}")
    tolerance = request.extra.get("safety_tolerance")
    if tolerance is not None and (
        not isinstance(tolerance, int) or isinstance(tolerance, bool) or not 0 <= tolerance <= MAX_SAFETY_TOLERANCE
    ):
        raise refuse_parameter(PROVIDER, "safety_tolerance", f"must be an integer from 0 to {MAX_SAFETY_TOLERANCE}")
    if not isinstance(request.extra.get("prompt_upsampling", False), bool):
        raise refuse_parameter(PROVIDER, "prompt_upsampling", "must be true or false")
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


def kontext_bodies(request: ImageRequest) -> list[dict[str, Any]]:
    """One FLUX Kontext task body per image to generate (``request`` already translated)."""
    out = []
    for body in bodies(request):
        optional: dict[str, Any] = {
            "output_format": "jpeg" if request.output_format in ("jpeg", "jpg") else request.output_format,
            "safety_tolerance": request.extra.get("safety_tolerance"),
            "prompt_upsampling": request.extra.get("prompt_upsampling"),
        }
        out.append({**body, **{k: v for k, v in optional.items() if v is not None}})
    return out


def kontext_edit_image(request: ImageRequest, model: str) -> str:
    """The one image of a Kontext edit as ``input_image`` (base64); refuses a mask or several images."""
    if request.mask is not None:
        raise refuse_parameter(
            PROVIDER,
            "mask",
            f"{model!r} edits by the prompt alone and takes no mask; send the edit without a mask "
            "or route it to a provider that inpaints",
            "unsupported_parameter",
        )
    if len(request.images) != 1:
        raise refuse_parameter(PROVIDER, "image", f"{model!r} on Fireworks edits one image, got {len(request.images)}")
    return pybase64.b64encode(request.images[0].data).decode("ascii")
