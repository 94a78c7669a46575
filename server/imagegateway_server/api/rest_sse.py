"""OpenAI's streamed image answer as server-sent events: partial images, completions, and the error event.

Each event is one ``event:`` line and one ``data:`` line of JSON, as OpenAI sends them
(``image_generation.partial_image``, ``image_generation.completed``; edits use the ``image_edit``
prefix). The base64 image is spliced into the JSON as bytes rather than run through a JSON
encoder (it needs no escaping), so a partial image costs one copy on its way through.

A failure after the first event is the ``error`` event: ``{"type": "error", "error": {...}}`` with
OpenAI's envelope (message, type, param, code), which the OpenAI SDK raises as ``APIError``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pybase64

from imagegateway_server.api import rest_json
from imagegateway_server.domain.progress import PartialImage
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage

GENERATION_EVENTS = "image_generation"
EDIT_EVENTS = "image_edit"
MEDIA_TYPE = "text/event-stream"
# No proxy may hold events back to gather a bigger body (nginx honours x-accel-buffering).
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _requested(request: ImageRequest) -> dict[str, str]:
    """The event fields OpenAI echoes from the request, where the provider did not say them."""
    return {
        "background": request.background or "auto",
        "output_format": request.output_format or "png",
        "quality": request.quality or "auto",
        "size": request.size or "auto",
    }


def _event(name: str, head: Mapping[str, Any], b64: bytes | memoryview, tail: Mapping[str, Any]) -> bytes:
    parts: list[bytes | memoryview] = [b"event: ", name.encode(), b'\ndata: {"type":', rest_json.dumps(name)]
    for key, value in head.items():
        parts += (b',"', key.encode(), b'":', rest_json.dumps(value))
    parts += (b',"b64_json":"', b64, b'"')
    for key, value in tail.items():
        parts += (b',"', key.encode(), b'":', rest_json.dumps(value))
    parts.append(b"}\n\n")
    return b"".join(parts)


def partial_image_event(image: PartialImage, request: ImageRequest, prefix: str = GENERATION_EVENTS) -> bytes:
    """``<prefix>.partial_image`` for one partial image, its fields as the provider sent them."""
    fields = _requested(request)
    for name in ("background", "output_format", "quality", "size"):
        value = getattr(image, name)
        if value:
            fields[name] = value
    head = {"partial_image_index": image.index, "created_at": image.created_at or int(time.time()), **fields}
    b64 = image.b64_json
    return _event(f"{prefix}.partial_image", head, b64.encode("ascii") if isinstance(b64, str) else b64, {})


def completed_event(
    image: GeneratedImage,
    request: ImageRequest,
    created: int,
    fields: Mapping[str, Any],
    prefix: str = GENERATION_EVENTS,
) -> bytes:
    """``<prefix>.completed`` for one final image; ``fields`` are the answer's response-level fields
    (``rest_image_shape.response_fields``: background, output_format, quality, size, usage, and
    safety_identifier when the provider said it)."""
    head: dict[str, Any] = {"created_at": created, **_requested(request)}
    # svg_usage is no field of OpenAI's events (SVG output does not stream).
    head.update({name: value for name, value in fields.items() if name not in ("usage", "svg_usage")})
    tail = {"usage": fields["usage"]} if "usage" in fields else {}
    return _event(f"{prefix}.completed", head, pybase64.b64encode(image.data or b""), tail)


def error_event(envelope: Mapping[str, Any]) -> bytes:
    """The ``error`` event carrying OpenAI's error envelope (``{"error": {...}}``)."""
    return b"event: error\ndata: " + rest_json.dumps({"type": "error", **envelope}) + b"\n\n"
