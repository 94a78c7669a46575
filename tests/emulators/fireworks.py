"""Fake Fireworks AI FLUX workflows: `POST /inference/v1/workflows/accounts/fireworks/models/{model}/text_to_image`.

Validates as Fireworks documents: Bearer key (a missing one is the API gateway's `fault` body, a
wrong one OpenAI's envelope); models flux-1-dev-fp8 and flux-1-schnell-fp8 (others 404); `prompt`
required; `aspect_ratio` one of the eleven; `guidance_scale`, `num_inference_steps` (dev 1-50,
schnell 1-12) and `seed` in range; any other field is FastAPI's 422 `detail` list. `Accept:
image/png` or `image/jpeg` answers the raw image with `finish-reason` and `seed` headers; `Accept:
application/json` answers `{"id", "base64": ["data:image/...;base64,..."], "finishReason", "seed"}`.
The content-filter fault is a 200 whose finish reason is `CONTENT_FILTERED` (the image black).
"""

from __future__ import annotations

import base64
import random
import re
import secrets
from typing import ClassVar

from .emulator import AnswerMode, Emulator, Endpoint, bearer_token
from .images import CONTENT_TYPES, ImageFormat, noise_png, solid_image
from .json_rules import BodyError, body_object, choice, integer, number, ratio_size, string
from .recording import RecordedRequest
from .server import Response

_ROUTE = re.compile(r"^/inference/v1/workflows/accounts/fireworks/models/([^/]+)/text_to_image/?$")
ASPECT_RATIOS = ("1:1", "21:9", "16:9", "3:2", "5:4", "4:5", "2:3", "9:16", "9:21", "4:3", "3:4")
MAX_STEPS = {"flux-1-dev-fp8": 50, "flux-1-schnell-fp8": 12}
_FIELDS = frozenset({"prompt", "aspect_ratio", "guidance_scale", "num_inference_steps", "seed"})
_MAX_SEED = 4_294_967_295


def _error(status: int, message: str, code: str | None = None) -> Response:
    return Response.json(
        status, {"error": {"object": "error", "type": "invalid_request_error", "message": message, "code": code}}
    )


def _fault(status: int, message: str, errorcode: str) -> Response:
    return Response.json(status, {"fault": {"faultstring": message, "detail": {"errorcode": errorcode}}})


class FireworksEmulator(Emulator):
    """Fireworks AI on `http://127.0.0.1:PORT/inference/v1`."""

    provider: ClassVar[str] = "fireworks-ai"
    _base_path: ClassVar[str] = "/inference/v1"
    _malformed_body: ClassVar[bytes] = b'{"id": "1", "base64": ["data:image/png;base64,iVBORw0KGgo'

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method == "POST" and _ROUTE.match(request.path):
            return self._text_to_image
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, f"Not found: {request.path}", "NOT_FOUND")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return _error(401, "The API key you provided is invalid.", "UNAUTHENTICATED")
        if status == 429:
            return self._rate_limited_response(request)
        return _error(status, f"HTTP {status}", "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(429, "Request rate limit exceeded, please try again later.", "RESOURCE_EXHAUSTED")

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return endpoint(request, AnswerMode(content_filtered=True))

    def _text_to_image(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        match = _ROUTE.match(request.path)
        assert match is not None
        if self.api_key is not None:
            token = bearer_token(request.headers)
            if not token:
                return _fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
            if token != self.api_key:
                return _error(401, "The API key you provided is invalid.", "UNAUTHENTICATED")
        model = match[1]
        if model not in MAX_STEPS:
            return _error(404, f"Model not found, inaccessible, and/or not deployed: accounts/fireworks/models/{model}")
        try:
            body = body_object(request.body)
            extra = [key for key in body if key not in _FIELDS]
            if extra:
                detail = [
                    {"loc": ["body", key], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                    for key in extra
                ]
                return Response.json(422, {"detail": detail})
            string(body, "prompt", required=True)
            ratio = choice(body, "aspect_ratio", ASPECT_RATIOS, "1:1")
            number(body, "guidance_scale", 0, 20)
            integer(body, "num_inference_steps", 1, MAX_STEPS[model])
            seed = integer(body, "seed", 0, _MAX_SEED, 0)
        except BodyError as error:
            return Response.json(400, {"detail": error.message})
        width, height = ratio_size(ratio, 1024 * 1024 / 1e6)
        accept = request.headers.get("accept", "image/png").split(",")[0].strip().lower()
        fmt: ImageFormat = "jpeg" if accept == "image/jpeg" else "png"
        image = noise_png(width, height, mode.image_bytes) if mode.image_bytes else solid_image(width, height, fmt)
        if mode.content_filtered:
            image = solid_image(width, height, fmt)  # Fireworks blacks the image out; the colour does not matter here
        finish = "CONTENT_FILTERED" if mode.content_filtered else "SUCCESS"
        seed = seed or random.randint(1, _MAX_SEED)
        if accept == "application/json":
            uri = f"data:{CONTENT_TYPES[fmt]};base64,{base64.b64encode(image).decode()}"
            return Response.json(
                200, {"id": secrets.token_hex(8), "base64": [uri], "finishReason": finish, "seed": seed}
            )
        headers = (("content-type", CONTENT_TYPES[fmt]), ("finish-reason", finish), ("seed", str(seed)))
        return Response(200, headers, image)
