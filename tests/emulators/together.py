"""Fake Together AI image API: `POST /v1/images/generations` with Together's auth, validation and shapes.

Validates as Together documents: Bearer key; `prompt` and `model` required; `width`/`height` within the
model's limits (FLUX.1 schnell/dev: multiples of 16 from 256 to 1792; FLUX 1.1 pro / 1 pro: multiples
of 32 up to 1440); `steps` within the model's range; `n` 1-4; `response_format` `base64` or `url`
(OpenAI's `b64_json` is refused, as Together does); `output_format` `jpeg` (default) or `png`.
Fields outside Together's schema are refused (stricter than the real API, which may ignore them), so
an adapter that sends OpenAI's `size` fails here. Answers `{"id", "model", "object": "list", "data":
[{"index", "type", "b64_json" | "url"}]}`; errors in OpenAI's envelope. The content-filter fault is
the safety checker's 422 (its exact shape is unconfirmed).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from .emulator import AnswerMode, Endpoint, bearer_token
from .generations import GenerationsEmulator
from .images import ImageFormat, noise_png, solid_image
from .json_rules import BodyError, body_object, choice, integer, number, string, unknown_fields
from .recording import RecordedRequest
from .server import Response

_FIELDS = frozenset(
    {
        "prompt", "model", "n", "steps", "seed", "width", "height", "negative_prompt", "response_format",
        "guidance_scale", "output_format", "image_url", "reference_images", "image_loras", "disable_safety_checker",
    }
)  # fmt: skip


@dataclass(frozen=True)
class _Model:
    max_side: int
    step: int
    max_steps: int


_OPEN = _Model(1792, 16, 50)
MODELS: dict[str, _Model] = {
    "black-forest-labs/FLUX.1-schnell": _Model(1792, 16, 12),
    "black-forest-labs/FLUX.1-schnell-Free": _Model(1792, 16, 12),
    "black-forest-labs/FLUX.1-dev": _OPEN,
    "black-forest-labs/FLUX.1.1-pro": _Model(1440, 32, 50),
    "black-forest-labs/FLUX.1-pro": _Model(1440, 32, 50),
}


def _error(status: int, message: str, type_: str, code: str | None = None, param: str | None = None) -> Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return Response.json(status, body)


class TogetherEmulator(GenerationsEmulator):
    """Together AI on `http://127.0.0.1:PORT/v1`."""

    provider: ClassVar[str] = "together-ai"

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, f"Not found: {request.method} {request.path}", "invalid_request_error")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return _unauthorized()
        if status == 429:
            return self._rate_limited_response(request)
        if status == 503:
            return _error(503, "The server is overloaded, please try again later.", "server_error", "overloaded")
        return _error(status, f"HTTP {status}", "server_error" if status >= 500 else "invalid_request_error")

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(429, "You have reached the rate limit for this model.", "rate_limit", "rate_limit_exceeded")

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return _nsfw()

    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        if self.api_key is not None and bearer_token(request.headers) != self.api_key:
            return _unauthorized()
        try:
            body = body_object(request.body)
            unknown_fields(body, _FIELDS)
            string(body, "prompt", required=True)
            name = string(body, "model", required=True)
            assert name is not None
            model = MODELS.get(name)
            if model is None:
                return _error(404, f"Unable to access model {name}.", "invalid_request_error", "model_not_available")
            n = integer(body, "n", 1, 4, 1)
            width = _side(body, "width", model)
            height = _side(body, "height", model)
            integer(body, "steps", 1, model.max_steps)
            integer(body, "seed", 0, 2**63 - 1)
            number(body, "guidance_scale", 0, 100)
            string(body, "negative_prompt")
            response_format = choice(body, "response_format", ("base64", "url"), "url")
            fmt: ImageFormat = "png" if choice(body, "output_format", ("jpeg", "png"), "jpeg") == "png" else "jpeg"
        except BodyError as error:
            return _error(error.status, error.message, "invalid_request_error", None, error.param)
        if mode.content_filtered:
            return _nsfw()
        assert n is not None
        image = noise_png(width, height, mode.image_bytes) if mode.image_bytes else solid_image(width, height, fmt)
        data: list[dict[str, Any]] = []
        for index in range(n):
            if response_format == "url":
                data.append({"index": index, "type": "url", "url": self.image_url(image, fmt)})
            else:
                data.append({"index": index, "type": "b64_json", "b64_json": base64.b64encode(image).decode()})
        return Response.json(200, {"id": secrets.token_hex(8), "model": name, "object": "list", "data": data})


def _side(body: dict[str, Any], name: str, model: _Model) -> int:
    value = integer(body, name, 256, model.max_side, 1024)
    assert value is not None
    if value % model.step:
        raise BodyError(f"'{name}' must be a multiple of {model.step}, got {value}", name)
    return value


def _unauthorized() -> Response:
    return _error(
        401,
        "Invalid API key provided. You can find your API key at https://api.together.xyz/settings/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    )


def _nsfw() -> Response:
    return _error(
        422,
        "NSFW content was detected in the generated image; try a different prompt.",
        "invalid_request_error",
        "nsfw",
    )
