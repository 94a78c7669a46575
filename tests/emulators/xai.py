"""Fake xAI image API: `POST /v1/images/generations` with xAI's auth, validation and shapes.

Validates as xAI does: a Bearer key, where a missing or wrong one is a **400** `{"code", "error"}`
("Incorrect API key provided: xa***yz ..."); models grok-imagine-image (-pro, -quality) and
grok-2-image (-1212), others 404; `n` 1-10; `response_format` `url` (default) or `b64_json`;
`size`, `style` and `quality` refused with 400 ("Argument not supported"), as are `aspect_ratio` and
`resolution` on grok-2-image; `aspect_ratio` one of xAI's ratios, `resolution` `1k` or `2k`.
Images are JPEGs (grok-2-image 1024x768; grok-imagine about 1 MP at 1k, 4 MP at 2k) with a
`revised_prompt`. The content-filter fault is a 400 saying content moderation rejected the image.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from .emulator import AnswerMode, Endpoint, bearer_token
from .generations import GenerationsEmulator
from .images import noise_png, solid_image
from .json_rules import BodyError, body_object, choice, integer, ratio_size, string
from .recording import RecordedRequest
from .server import Response

IMAGINE = frozenset({"grok-imagine-image", "grok-imagine-image-pro", "grok-imagine-image-quality"})
GROK_2 = frozenset({"grok-2-image", "grok-2-image-1212"})
ASPECT_RATIOS = (
    "1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "2:1", "1:2", "20:9", "9:20", "19.5:9", "9:19.5", "auto",
)  # fmt: skip
_COMMON = frozenset({"prompt", "model", "n", "response_format", "user"})
_IMAGINE_FIELDS = _COMMON | {"aspect_ratio", "resolution", "image"}
_INVALID = "Client specified an invalid argument"


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, {"code": code, "error": message})


def _mask(key: str) -> str:
    return key[:2] + "***" + key[-2:] if len(key) > 4 else "***"


class XAIEmulator(GenerationsEmulator):
    """xAI on `http://127.0.0.1:PORT/v1`."""

    provider: ClassVar[str] = "x-ai"

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, "Some requested entity was not found", f"No route for {request.method} {request.path}")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 429:
            return self._rate_limited_response(request)
        if status >= 500:
            return _error(status, "Internal error", "The service is temporarily unavailable.")
        return _error(status, _INVALID, f"HTTP {status}")

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(429, "Some resource has been exhausted", "Your team has exceeded its requests-per-second limit.")

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return _moderated()

    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        if self.api_key is not None:
            token = bearer_token(request.headers)
            if not token:
                return _error(
                    400, _INVALID, "No API key provided. You can obtain an API key from https://console.x.ai."
                )
            if token != self.api_key:
                return _error(
                    400,
                    _INVALID,
                    f"Incorrect API key provided: {_mask(token)}. You can obtain an API key from https://console.x.ai.",
                )
        try:
            body = body_object(request.body)
            string(body, "prompt", required=True)
            model = string(body, "model") or "grok-imagine-image"
            if model not in IMAGINE | GROK_2:
                return _error(
                    404,
                    "Some requested entity was not found",
                    f"The model {model} does not exist or your team does not have access to it.",
                )
            allowed = _COMMON if model in GROK_2 else _IMAGINE_FIELDS
            for key in body:
                if key not in allowed:
                    raise BodyError(f"Argument not supported: {key}", key)
            n = integer(body, "n", 1, 10, 1)
            response_format = choice(body, "response_format", ("url", "b64_json"), "url")
            ratio = choice(body, "aspect_ratio", ASPECT_RATIOS, "1:1")
            resolution = choice(body, "resolution", ("1k", "2k"), "1k")
        except BodyError as error:
            return _error(400, _INVALID, error.message)
        if mode.content_filtered:
            return _moderated()
        if model in GROK_2:
            width, height = 1024, 768
        else:
            width, height = ratio_size(
                "1:1" if ratio == "auto" else ratio, (1024 if resolution == "1k" else 2048) ** 2 / 1e6
            )
        image = noise_png(width, height, mode.image_bytes) if mode.image_bytes else solid_image(width, height, "jpeg")
        assert n is not None
        data: list[dict[str, Any]] = []
        for _ in range(n):
            item: dict[str, Any] = {"revised_prompt": f"A detailed image of: {body['prompt']}"}
            if response_format == "url":
                item["url"] = self.image_url(image, "png" if mode.image_bytes else "jpeg")
            else:
                item["b64_json"] = base64.b64encode(image).decode()
            data.append(item)
        return Response.json(200, {"data": data})


def _moderated() -> Response:
    return _error(400, _INVALID, "Generated image rejected by content moderation.")
