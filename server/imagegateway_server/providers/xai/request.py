"""Maps an ImageRequest to xAI's ``/images/generations`` body, refusing what xAI does not take.

| ImageRequest | grok-imagine-image | grok-2-image |
|---|---|---|
| prompt, model, n, user | sent | sent |
| size | ``aspect_ratio`` + ``resolution`` (translated, ``models``) | 1024x768 only, not sent |
| aspect_ratio | sent (one of xAI's ratios) | refused |
| extra ``resolution`` | sent (``1k`` or ``2k``) | refused |
| response_format | ``url`` when the caller wants URLs, else ``b64_json`` | same |
| quality (but ``auto``), style, seed, negative_prompt, cfg_scale, output_format, anything else | refused | refused |

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call: xAI
itself answers 400 for ``size``, ``quality`` and ``style``.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.xai import PROVIDER
from imagegateway_server.providers.xai.models import IMAGINE_ASPECT_RATIOS, RESOLUTIONS, is_grok_2

_COMMON = frozenset({"model", "n", "user"})
_IMAGINE = _COMMON | {"aspect_ratio", "resolution"}


def build_body(request: ImageRequest, model: str) -> dict[str, Any]:
    """The JSON body for ``request`` (already translated for ``model``: a size is gone by now)."""
    grok_2 = is_grok_2(model)
    accepted = _COMMON if grok_2 else _IMAGINE
    for name in request.set_fields():
        if name == "size" and grok_2:
            continue  # 1024x768, the only size grok-2-image makes (translation checked it); xAI refuses the field
        if name not in accepted:
            raise refuse_parameter(PROVIDER, name, f"is not supported by model {model!r}", "unknown_parameter")
    ratio = request.aspect_ratio
    if ratio is not None and ratio not in IMAGINE_ASPECT_RATIOS:
        raise refuse_parameter(PROVIDER, "aspect_ratio", f"must be one of {', '.join(sorted(IMAGINE_ASPECT_RATIOS))}")
    resolution = request.extra.get("resolution")
    if resolution is not None and resolution not in RESOLUTIONS:
        raise refuse_parameter(PROVIDER, "resolution", f"must be one of {', '.join(RESOLUTIONS)}")
    body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
    optional: dict[str, Any] = {"aspect_ratio": ratio, "resolution": resolution, "user": request.user}
    body.update({k: v for k, v in optional.items() if v is not None})
    body["response_format"] = "url" if request.response_format is ResponseFormat.URL else "b64_json"
    return body
