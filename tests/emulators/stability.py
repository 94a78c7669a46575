"""Fake Stability AI API: v1 `text-to-image` (JSON), v2beta Stable Image generate (multipart, with
image-to-image) and v2beta edit/inpaint."""

from __future__ import annotations

import base64
import random
import re
from typing import Any, ClassVar

from .emulator import AnswerMode, Emulator, Endpoint, bearer_token, mask_key
from .forms import media_type
from .images import CONTENT_TYPES, ImageFormat, noise_png, solid_image
from .recording import RecordedRequest
from .server import Response
from .stability_rules import (
    V1_MAX_SEED,
    V2_ENDPOINTS,
    V2_MAX_SEED,
    StabilityError,
    V2Generation,
    parse_inpaint,
    parse_v1,
    parse_v2,
)

_V1_ROUTE = re.compile(r"^/v1/generation/([^/]+)/text-to-image/?$")
_V2_ROUTE = re.compile(r"^/v2beta/stable-image/generate/([^/]+)/?$")
_INPAINT_ROUTE = re.compile(r"^/v2beta/stable-image/edit/inpaint/?$")
_V2_MAX_BODY = 10 * 1024 * 1024
_MODERATION_MESSAGE = (
    "Your request was flagged by our content moderation system, as a result your request "
    "was denied and you were not charged."
)
_RATE_LIMIT_MESSAGE = (
    "You have exceeded the rate limit of 150 requests within a 10 second period, and have "
    "been timed out for 60 seconds."
)

_V1_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "bad request"),
    401: ("unauthorized", "missing authorization header"),
    403: ("permission_denied", "You do not have permission to access this resource"),
    404: ("not_found", "The specified engine was not found."),
    429: ("rate_limit_exceeded", _RATE_LIMIT_MESSAGE),
    500: ("server_error", "An unexpected server error occurred, please try again."),
}
_V2_DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "bad request"),
    401: ("unauthorized", "authorization: invalid or missing API key"),
    402: ("payment_required", "You lack sufficient credits to make this request."),
    403: ("content_moderation", _MODERATION_MESSAGE),
    404: ("not_found", "The requested resource was not found."),
    413: ("payload_too_large", "body: payloads cannot be larger than 10MiB in size"),
    422: ("invalid_language", "English is the only supported language for this service."),
    429: ("rate_limit_exceeded", _RATE_LIMIT_MESSAGE),
    500: ("internal_error", "An unexpected server error has occurred, please try again later."),
}


class StabilityEmulator(Emulator):
    """Stability AI on `http://127.0.0.1:PORT`.

    `sd16_max_pixels` adds the (unconfirmed) pixel-count limit to `stable-diffusion-v1-6`.
    """

    provider: ClassVar[str] = "stability"
    _malformed_body: ClassVar[bytes] = b'{"artifacts": [{"base64": "iVBORw0KGgoAAAANSUhEUgAA'

    def __init__(self, api_key: str | None = None, *, sd16_max_pixels: int | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.sd16_max_pixels = sd16_max_pixels

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method != "POST":
            return None
        if _V1_ROUTE.match(request.path):
            return self._v1_text_to_image
        if _V2_ROUTE.match(request.path):
            return self._v2_generate
        if _INPAINT_ROUTE.match(request.path):
            return self._v2_inpaint
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        error = StabilityError(404, "not_found", f"{request.method} {request.path}: route not found")
        return _error(error, request)

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        table = _V1_DEFAULT_ERRORS if _is_v1(request) else _V2_DEFAULT_ERRORS
        name, message = table.get(status, ("internal_error" if status >= 500 else "bad_request", f"HTTP {status}"))
        return _error(StabilityError(status, name, message), request)

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return self._error_response(429, request)

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return _error(StabilityError(403, "content_moderation", _MODERATION_MESSAGE), request)

    def _authenticate(self, request: RecordedRequest) -> None:
        if self.api_key is None:
            return
        token = bearer_token(request.headers)
        if not token:
            message = "missing authorization header" if _is_v1(request) else "authorization: is required"
            raise StabilityError(401, "unauthorized", message)
        if token != self.api_key:
            raise StabilityError(401, "unauthorized", f"Incorrect API key provided: {mask_key(token)}")

    # -- v1 ----------------------------------------------------------------------------------------

    def _v1_text_to_image(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        match = _V1_ROUTE.match(request.path)
        assert match is not None
        try:
            self._authenticate(request)
            generation = parse_v1(match[1], request.body, request.headers.get("accept"), self.sd16_max_pixels)
        except StabilityError as error:
            return _error(error, request)
        image = _image(generation.width, generation.height, "png", mode)
        finish_reason = "CONTENT_FILTERED" if mode.content_filtered else "SUCCESS"
        seed = generation.seed or random.randint(1, V1_MAX_SEED - 10)
        if generation.png_accept:
            headers = (("content-type", "image/png"), ("finish-reason", finish_reason), ("seed", str(seed)))
            return Response(200, headers, image)
        encoded = base64.b64encode(image).decode("ascii")
        artifacts = [
            {"base64": encoded, "seed": seed + index, "finishReason": finish_reason}
            for index in range(generation.samples)
        ]
        return Response.json(200, {"artifacts": artifacts})

    # -- v2beta ------------------------------------------------------------------------------------

    def _v2_generate(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        match = _V2_ROUTE.match(request.path)
        assert match is not None
        try:
            generation = self._parse_v2(match[1], request)
        except StabilityError as error:
            return _error(error, request)
        image = _image(generation.width, generation.height, generation.output_format, mode)
        fmt: ImageFormat = "png" if mode.image_bytes is not None else generation.output_format
        finish_reason = "CONTENT_FILTERED" if mode.content_filtered else "SUCCESS"
        seed = generation.seed or random.randint(1, V2_MAX_SEED)
        if generation.json_accept:
            payload = {"image": base64.b64encode(image).decode("ascii"), "finish_reason": finish_reason, "seed": seed}
            return Response.json(200, payload, content_type=f"application/json; type={CONTENT_TYPES[fmt]}")
        headers = (("content-type", CONTENT_TYPES[fmt]), ("finish-reason", finish_reason), ("seed", str(seed)))
        return Response(200, headers, image)

    def _v2_inpaint(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            if media_type(request.headers.get("content-type")) != "multipart/form-data" or request.form is None:
                raise StabilityError(400, "bad_request", "content-type: must be multipart/form-data")
            inpaint = parse_inpaint(request.form, request.files, request.headers.get("accept"))
        except StabilityError as error:
            return _error(error, request)
        image = _image(inpaint.width, inpaint.height, inpaint.output_format, mode)
        finish_reason = "CONTENT_FILTERED" if mode.content_filtered else "SUCCESS"
        seed = inpaint.seed or random.randint(1, V2_MAX_SEED)
        if inpaint.json_accept:
            payload = {"image": base64.b64encode(image).decode("ascii"), "finish_reason": finish_reason, "seed": seed}
            return Response.json(200, payload)
        fmt = CONTENT_TYPES["png" if mode.image_bytes is not None else inpaint.output_format]
        headers = (("content-type", fmt), ("finish-reason", finish_reason), ("seed", str(seed)))
        return Response(200, headers, image)

    def _parse_v2(self, endpoint: str, request: RecordedRequest) -> V2Generation:
        if endpoint not in V2_ENDPOINTS:
            raise StabilityError(404, "not_found", f"{request.path}: route not found")
        self._authenticate(request)
        if len(request.body) > _V2_MAX_BODY:
            raise StabilityError(413, "payload_too_large", _V2_DEFAULT_ERRORS[413][1])
        if media_type(request.headers.get("content-type")) != "multipart/form-data":
            raise StabilityError(400, "bad_request", "content-type: must be multipart/form-data")
        if request.form is None:
            raise StabilityError(400, "bad_request", "body: malformed multipart/form-data")
        return parse_v2(endpoint, request.form, request.files, request.headers.get("accept"))


def _is_v1(request: RecordedRequest) -> bool:
    return request.path.startswith("/v1/")


def _error(error: StabilityError, request: RecordedRequest) -> Response:
    body = error.v1_body() if _is_v1(request) else error.v2_body()
    return Response.json(error.status, body)


def _image(width: int, height: int, fmt: ImageFormat, mode: AnswerMode) -> bytes:
    if mode.image_bytes is not None:
        return noise_png(width, height, mode.image_bytes)
    return solid_image(width, height, fmt)
