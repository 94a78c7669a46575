"""Maps an ImageRequest to Together's ``/images/generations`` body, refusing what Together does not take.

| ImageRequest | Together |
|---|---|
| prompt, model, n | sent |
| size | ``width`` / ``height`` (translated to the nearest the model makes, ``models``) |
| seed, negative_prompt | sent |
| cfg_scale | ``guidance_scale`` |
| quality | ``steps`` (``models``; translated before the body is built) |
| output_format | ``jpeg`` or ``png`` |
| response_format | ``url`` when the caller wants URLs, else ``base64`` (Together's name for b64_json) |
| extra ``steps``, ``guidance_scale`` | sent |
| style, user, aspect_ratio, background, moderation, output_compression, style_preset, anything else | refused |

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest, ResponseFormat, parse_size
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.together import PROVIDER

ACCEPTED = frozenset(
    {"model", "n", "size", "seed", "negative_prompt", "cfg_scale", "output_format", "steps", "guidance_scale"}
)
OUTPUT_FORMATS = ("jpeg", "png")


def build_body(request: ImageRequest, model: str) -> dict[str, Any]:
    """The JSON body for ``request`` (already translated for ``model``)."""
    for name in request.set_fields():
        if name not in ACCEPTED:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model!r}", "unknown_parameter")
    if request.output_format is not None and request.output_format not in OUTPUT_FORMATS:
        raise refuse_parameter(PROVIDER, "output_format", f"must be one of {', '.join(OUTPUT_FORMATS)}")
    if request.cfg_scale is not None and "guidance_scale" in request.extra:
        raise refuse_parameter(PROVIDER, "cfg_scale", "and guidance_scale are the same setting on Together; send one")
    body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
    if request.size is not None and request.size != "auto":
        width, height = parse_size(request.size)
        body.update(width=width, height=height)
    optional: dict[str, Any] = {
        "seed": request.seed,
        "negative_prompt": request.negative_prompt,
        "guidance_scale": request.cfg_scale if request.cfg_scale is not None else request.extra.get("guidance_scale"),
        "steps": request.extra.get("steps"),
        "output_format": request.output_format,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body["response_format"] = "url" if request.response_format is ResponseFormat.URL else "base64"
    return body
