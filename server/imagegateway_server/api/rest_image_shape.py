"""The shape of an OpenAI images answer: ``url`` or ``b64_json`` items, and the response-level fields.

OpenAI answers the dall-e models with ``url`` items unless ``response_format`` says otherwise, and the
gpt-image models always with ``b64_json`` plus ``background``, ``output_format``, ``quality``,
``size``, ``usage``, ``safety_identifier`` (when the request set one or ``user``) and ``svg_usage`` (SVG
output). The caller gets the shape of the model it asked for, whichever target
serves: a caller that named a gpt-image model reads ``b64_json`` even when a fallback's dall-e-3 or
Stability answered, and a caller of dall-e-3 reads a ``url`` (a ``data:`` URL when the serving
provider gave bytes) even when a gpt-image successor answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imagegateway_server.domain.request import ResponseFormat
from imagegateway_server.domain.result import RoutedResult
from imagegateway_server.providers.kit.openai_image_models import ModelFamily, model_family

_FORMAT_OF_MIME = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/svg+xml": "svg",
}


def native_format(model: str) -> ResponseFormat:
    """What OpenAI answers ``model`` with when no ``response_format`` is sent."""
    return ResponseFormat.B64_JSON if model_family(model) is ModelFamily.GPT_IMAGE else ResponseFormat.URL


def asked_model(routed: RoutedResult) -> str:
    """The model the caller's request asked for: the retired model a successor stood in for, else
    the first target's model (the caller's own, or the one its config set), else the one that served."""
    if routed.substitution is not None:
        return routed.substitution.model
    if routed.attempts:
        return routed.attempts[0].model
    return routed.result.model


def answer_format(asked: ResponseFormat, routed: RoutedResult) -> ResponseFormat:
    """The item shape to answer with: the caller's ``response_format``, else the asked model's own."""
    if asked is ResponseFormat.MODEL_DEFAULT:
        return native_format(asked_model(routed))
    return asked


def response_fields(routed: RoutedResult) -> dict[str, Any]:
    """OpenAI's response-level fields for this answer (besides ``created`` and ``data``).

    What the provider sent is passed on as it sent it. A caller that asked for a gpt-image model
    also gets ``output_format`` and ``size`` read from the images when the serving provider did not
    say them (a fallback on dall-e or Stability), so code that reads them keeps working; ``usage``,
    ``svg_usage`` and ``safety_identifier`` are only ever the provider's own, never made up (another
    provider did no abuse monitoring under the caller's identifier).
    """
    result = routed.result
    fields: dict[str, Any] = {
        name: value
        for name, value in (
            ("background", result.background),
            ("output_format", result.output_format),
            ("quality", result.quality),
            ("size", result.size),
            ("safety_identifier", result.safety_identifier),
        )
        if value
    }
    if isinstance(result.usage, Mapping):
        fields["usage"] = dict(result.usage)
    if isinstance(result.svg_usage, Mapping):
        fields["svg_usage"] = dict(result.svg_usage)
    if model_family(asked_model(routed)) is ModelFamily.GPT_IMAGE:
        formats = {_FORMAT_OF_MIME.get(image.mime_type, "") for image in result.images}
        sizes = {image.size for image in result.images}
        if "output_format" not in fields and len(formats) == 1 and "" not in formats:
            fields["output_format"] = formats.pop()
        if "size" not in fields and len(sizes) == 1 and "" not in sizes:
            fields["size"] = sizes.pop()
    return fields
