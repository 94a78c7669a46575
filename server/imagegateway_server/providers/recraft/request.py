"""Maps an ImageRequest to Recraft's ``/images/generations`` body, refusing what Recraft does not take.

| ImageRequest | V4.x | V2 / V3 |
|---|---|---|
| prompt, model, n, size | sent (size translated to the model's list, ``models``) | same |
| style | refused | sent (Recraft's style names) |
| negative_prompt | refused | sent |
| response_format | ``url`` when the caller wants URLs, else ``b64_json`` | same |
| extra ``substyle``, ``style_id`` | refused | sent |
| extra ``controls`` (an object) | sent | sent |
| quality (but ``auto``), seed, user, cfg_scale, aspect_ratio, output_format, ... | refused | refused |

A model outside ``models`` (the ``_vector`` ones answer SVG) is refused naming ``model``.
Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.recraft import PROVIDER
from imagegateway_server.providers.recraft.models import KNOWN_MODELS, model_spec, takes_style

_COMMON = frozenset({"model", "n", "size", "controls"})
_STYLED = _COMMON | {"style", "negative_prompt", "substyle", "style_id"}


def build_body(request: ImageRequest, model: str) -> dict[str, Any]:
    """The JSON body for ``request`` (already translated for ``model``)."""
    if model_spec(model) is None:
        raise refuse_parameter(
            PROVIDER, "model", f"{model!r} is not a Recraft raster model; expected one of {', '.join(KNOWN_MODELS)}"
        )
    accepted = _STYLED if takes_style(model) else _COMMON
    for name in request.set_fields():
        if name not in accepted:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model!r}", "unknown_parameter")
    controls = request.extra.get("controls")
    if controls is not None and not isinstance(controls, dict):
        raise refuse_parameter(PROVIDER, "controls", "must be an object")
    body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
    optional: dict[str, Any] = {
        "size": request.size if request.size != "auto" else None,
        "style": request.style,
        "negative_prompt": request.negative_prompt,
        "substyle": request.extra.get("substyle"),
        "style_id": request.extra.get("style_id"),
        "controls": controls,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    body["response_format"] = "url" if request.response_format is ResponseFormat.URL else "b64_json"
    return body
