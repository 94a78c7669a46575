"""Maps a translated ImageRequest to the body of its Bedrock model's family, refusing what the model won't take.

| ImageRequest | Nova Canvas / Titan v2 (``TEXT_IMAGE``) | Stability on Bedrock |
|---|---|---|
| prompt | ``textToImageParams.text`` (Nova 1-1024, Titan 1-512 chars) | ``prompt`` (at most 10,000) |
| negative_prompt | ``textToImageParams.negativeText`` (same limits) | ``negative_prompt`` |
| n | ``imageGenerationConfig.numberOfImages`` (1-5) | one call per image (a set seed steps: seed, seed+1, ...) |
| size | ``width``/``height`` from the model's table (1) | ``aspect_ratio``, the nearest of nine (1) |
| aspect_ratio | refused | ``aspect_ratio`` |
| quality | ``quality`` standard / premium (1) | refused (``auto`` only) |
| style | Nova: ``textToImageParams.style``; Titan: refused | refused |
| seed | ``seed`` (Nova 0-858,993,459, Titan 0-2,147,483,646) | ``seed`` (0-4,294,967,294) |
| cfg_scale | ``cfgScale`` (1.1-10) | refused |
| output_format | ``png`` only (they make PNG) | ``output_format`` png, jpeg, webp |
| anything else (user, background, ...) | refused | refused |

(1) Translated before this by ``kit.translation`` from the ``models`` tables (strict mode refuses).
SD3.5 Large also gets ``mode: text-to-image``, the one mode this adapter uses. Every refusal is a
BAD_REQUEST naming the parameter, raised before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest, parse_size
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.bedrock.models import SD3_5_LARGE, STABILITY_ASPECT_RATIOS, BedrockModel, Family
from imagegateway_server.providers.kit.errors import refuse_parameter

MIN_CFG_SCALE = 1.1
MAX_CFG_SCALE = 10.0
STABILITY_OUTPUT_FORMATS = ("png", "jpeg", "webp")

_AMAZON_PARAMS = frozenset({"model", "n", "size", "quality", "seed", "negative_prompt", "cfg_scale", "output_format"})
_ACCEPTED: dict[Family, frozenset[str]] = {
    Family.NOVA: _AMAZON_PARAMS | {"style"},
    Family.TITAN: _AMAZON_PARAMS,
    Family.STABILITY: frozenset({"model", "n", "aspect_ratio", "seed", "negative_prompt", "output_format"}),
}


def check_params(request: ImageRequest, model_id: str, model: BedrockModel) -> None:
    """Refuses, naming it, a parameter the model does not take or a value outside its limits."""
    family = model.family
    for name in request.set_fields():
        if name not in _ACCEPTED[family]:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model_id!r}", "unknown_parameter")
    check_values(request, model_id, model)


def check_values(request: ImageRequest, model_id: str, model: BedrockModel) -> None:
    """Refuses, naming it, a value outside the model's limits (a variation's prompt may be empty)."""
    family = model.family
    if request.prompt or request.operation is not Operation.VARIATION:
        _check_text("prompt", request.prompt, model.max_prompt_chars)
    if request.negative_prompt is not None:
        _check_text("negative_prompt", request.negative_prompt, model.max_prompt_chars)
    if request.seed is not None and not 0 <= request.seed <= model.max_seed:
        raise refuse_parameter(PROVIDER, "seed", f"must be from 0 to {model.max_seed} for model {model_id!r}")
    if request.cfg_scale is not None and not MIN_CFG_SCALE <= request.cfg_scale <= MAX_CFG_SCALE:
        raise refuse_parameter(PROVIDER, "cfg_scale", f"must be from {MIN_CFG_SCALE} to {MAX_CFG_SCALE}")
    formats = STABILITY_OUTPUT_FORMATS if family is Family.STABILITY else ("png",)
    if request.output_format is not None and request.output_format not in formats:
        raise refuse_parameter(PROVIDER, "output_format", f"must be one of {', '.join(formats)} for {model_id!r}")
    ratio = request.aspect_ratio
    if ratio is not None and not STABILITY_ASPECT_RATIOS.allows(ratio):
        raise refuse_parameter(PROVIDER, "aspect_ratio", f"must be {STABILITY_ASPECT_RATIOS.describe}")


def _check_text(param: str, text: str, limit: int) -> None:
    if not text or len(text) > limit:
        raise refuse_parameter(PROVIDER, param, f"must be 1 to {limit} characters for this model, got {len(text)}")


def amazon_body(request: ImageRequest, model: BedrockModel, default_size: str) -> dict[str, Any]:
    """Nova Canvas's and Titan's ``TEXT_IMAGE`` body; ``request`` is translated (its size is allowed)."""
    width, height = parse_size(request.size or default_size)
    params: dict[str, Any] = {"text": request.prompt}
    if request.negative_prompt:
        params["negativeText"] = request.negative_prompt
    if request.style is not None and model.family is Family.NOVA:
        params["style"] = request.style
    config: dict[str, Any] = {"numberOfImages": request.n, "width": width, "height": height}
    if request.quality is not None:
        config["quality"] = request.quality
    if request.cfg_scale is not None:
        config["cfgScale"] = request.cfg_scale
    if request.seed is not None:
        config["seed"] = request.seed
    return {"taskType": "TEXT_IMAGE", "textToImageParams": params, "imageGenerationConfig": config}


def stability_bodies(request: ImageRequest, model_id: str, model: BedrockModel) -> list[dict[str, Any]]:
    """One Stability-on-Bedrock body per image; ``request`` is translated (a size became its ratio)."""
    bodies = []
    for index in range(request.n):
        body: dict[str, Any] = {"prompt": request.prompt}
        if model_id == SD3_5_LARGE:
            body["mode"] = "text-to-image"
        if request.aspect_ratio is not None:
            body["aspect_ratio"] = request.aspect_ratio
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.seed:
            # The same seed n times would make n identical images.
            body["seed"] = (request.seed + index - 1) % model.max_seed + 1
        elif request.seed == 0:
            body["seed"] = 0  # Stability's "random"
        if request.output_format is not None:
            body["output_format"] = request.output_format
        bodies.append(body)
    return bodies
