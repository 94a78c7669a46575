"""Maps an ImageRequest to Stability's v1 JSON body or v2beta forms, refusing what the model won't take.

Field mapping:

| ImageRequest | v1 | v2beta |
|---|---|---|
| prompt / negative_prompt | ``text_prompts`` at weight 1 / -1 | ``prompt`` / ``negative_prompt`` |
| n | ``samples`` | n concurrent calls (one image each); a set seed becomes seed, seed+1, ... |
| size | ``width``/``height``, the nearest the engine makes (1) | nearest of the nine ``aspect_ratio`` values (1) |
| aspect_ratio | refused | ``aspect_ratio`` (one of the nine) |
| seed, style_preset | sent | sent |
| cfg_scale | sent | sd3 only, refused elsewhere |
| output_format | ``png`` only (v1 makes PNG) | sent |
| user | header ``stability-client-user-id`` | same |
| quality | ``steps`` (low 20, medium/standard 30, high/hd 50) (1) | refused (``auto`` only) |
| style, background, output_compression, moderation | refused | refused |
| extra ``steps``, ``sampler``, ``clip_guidance_preset`` | sent | refused |

(1) Translated before the call by ``kit.translation.translate`` from the ``models`` tables, and
reported in ``ImageResult.translations``; in strict mode refused instead. None or ``auto`` means the
engine default, 1024x1024 for SDXL and 512x512 for v1-6. An enabled alias (``kit.model_aliases``)
may first replace the model.

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import ImageRequest, parse_size
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.headers import header_value_ok
from imagegateway_server.providers.stability import PROVIDER
from imagegateway_server.providers.stability.models import (
    ASPECT_RATIOS,
    SDXL_1_0,
    SDXL_SIZES,
    V1_DEFAULT_SIZE,
    Route,
)

MAX_SEED = 4_294_967_294
MAX_CLIENT_HEADER_CHARS = 256

_COMMON = frozenset({"model", "n", "size", "seed", "style_preset", "negative_prompt", "user", "output_format"})
_V1_PARAMS = _COMMON | {"cfg_scale", "steps", "sampler", "clip_guidance_preset"}
_V2_PARAMS = _COMMON | {"aspect_ratio"}
_V1_EXTRA = ("steps", "sampler", "clip_guidance_preset")


def accepted_params(where: Route) -> frozenset[str]:
    """The ImageRequest fields the endpoint serving a model takes at all."""
    if where.api == "v1":
        return _V1_PARAMS
    return _V2_PARAMS | {"cfg_scale"} if where.endpoint == "sd3" else _V2_PARAMS


def check_params(request: ImageRequest, model: str, where: Route) -> None:
    """Refuses, naming it, a parameter the model's endpoint does not take or a value it cannot make."""
    accepted = accepted_params(where)
    for name in request.set_fields():
        if name not in accepted:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model!r}", "unknown_parameter")
    if where.api == "v1" and request.output_format not in (None, "png"):
        raise refuse_parameter(PROVIDER, "output_format", f"model {model!r} only produces png")
    ratio = request.aspect_ratio
    if where.api == "v2beta" and ratio is not None and ratio not in ASPECT_RATIOS:
        raise refuse_parameter(PROVIDER, "aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}")


def own_headers(request: ImageRequest, api_key: str) -> dict[str, str]:
    """The adapter's own headers: the key, JSON answers, and the caller's ``user`` as Stability's client id."""
    own = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    if request.user is not None:
        if len(request.user) > MAX_CLIENT_HEADER_CHARS or not header_value_ok(request.user):
            limit = f"must be at most {MAX_CLIENT_HEADER_CHARS} visible ASCII characters"
            raise refuse_parameter(PROVIDER, "user", limit)
        own["stability-client-user-id"] = request.user
    return own


def v1_dimensions(engine: str, size: str | None) -> tuple[int, int]:
    """Width and height for a v1 engine; a size the engine cannot make is a BAD_REQUEST naming ``size``."""
    if size is None or size == "auto":
        return V1_DEFAULT_SIZE[engine]
    width, height = _parse_size(size)
    if engine == SDXL_1_0:
        if (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
            raise refuse_parameter(PROVIDER, "size", f"{size!r} is not a size {engine} makes; allowed: {allowed}")
    elif not all(320 <= side <= 1536 and side % 64 == 0 for side in (width, height)):
        raise refuse_parameter(
            PROVIDER, "size", f"{size!r} does not fit {engine}: each side must be a multiple of 64 from 320 to 1536"
        )
    return width, height


def v1_body(request: ImageRequest, engine: str) -> dict[str, Any]:
    """The v1 text-to-image JSON body."""
    width, height = v1_dimensions(engine, request.size)
    prompts: list[dict[str, Any]] = [{"text": request.prompt, "weight": 1}]
    if request.negative_prompt:
        prompts.append({"text": request.negative_prompt, "weight": -1})
    body: dict[str, Any] = {"text_prompts": prompts, "width": width, "height": height, "samples": request.n}
    optional: dict[str, Any] = {
        "seed": request.seed,
        "cfg_scale": request.cfg_scale,
        "style_preset": request.style_preset,
        **{name: request.extra.get(name) for name in _V1_EXTRA},
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def v2_forms(request: ImageRequest, where: Route) -> list[list[tuple[str, str]]]:
    """One multipart form (as ordered name/value pairs) per image to generate.

    ``request`` is translated: a size has already become its ``aspect_ratio``.
    """
    forms = []
    for index in range(request.n):
        seed = request.seed
        if seed:
            # Same seed n times would give n identical images; step it as samples do on v1.
            seed = (seed + index - 1) % MAX_SEED + 1
        fields: list[tuple[str, Any]] = [
            ("prompt", request.prompt),
            ("negative_prompt", request.negative_prompt),
            ("aspect_ratio", request.aspect_ratio),
            ("seed", seed),
            ("output_format", request.output_format),
            ("style_preset", request.style_preset),
            ("model", where.sd3_model),
            ("cfg_scale", request.cfg_scale if where.endpoint == "sd3" else None),
        ]
        forms.append([(name, _form_value(value)) for name, value in fields if value is not None])
    return forms


def _form_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_size(size: str) -> tuple[int, int]:
    try:
        return parse_size(size)
    except InvalidArgument:
        raise refuse_parameter(PROVIDER, "size", f"must look like 1024x1024, got {size!r}") from None
