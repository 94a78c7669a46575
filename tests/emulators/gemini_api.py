"""Fake Gemini API (AI Studio): ``POST /v1beta/models/{model}:generateContent`` and ``:predict`` for Imagen.

Validates as the Gemini API does: the ``x-goog-api-key`` header (a wrong key is 400 INVALID_ARGUMENT
with ErrorInfo reason ``API_KEY_INVALID``, none at all 403 PERMISSION_DENIED), a model it serves for
the method, and the body (``google_rules``: no Imagen seed, negative prompt or watermark switch, no
Vertex-only image options). Faults: ``content_filter`` is the safety filter (every Imagen image
dropped as ``raiFilteredReason`` entries; Gemini's ``finishReason: IMAGE_SAFETY``),
``moderation_denied`` the blocked prompt (Imagen's 400; Gemini's ``promptFeedback.blockReason``),
``drop_next_images(k)`` a partial Imagen answer; statuses answer in Google's envelope.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar, TypeVar

from .emulator import Endpoint
from .google_images import GoogleImagesEmulator
from .google_rules import GeminiRules, GoogleError, ImagenRules, status_error
from .recording import RecordedRequest
from .server import Response

_Rules = TypeVar("_Rules", ImagenRules, GeminiRules)
_CALL = re.compile(r"^/v1beta/models/([^/:]+):(generateContent|predict)$")

GEMINI_MODELS: Mapping[str, GeminiRules] = {
    "gemini-2.5-flash-image": GeminiRules(),
    "gemini-3-pro-image-preview": GeminiRules(("1K", "2K", "4K")),
}
IMAGEN_MODELS: Mapping[str, ImagenRules] = {
    "imagen-4.0-generate-001": ImagenRules(("1K", "2K"), seed=False),
    "imagen-4.0-ultra-generate-001": ImagenRules(("1K", "2K"), seed=False),
    "imagen-4.0-fast-generate-001": ImagenRules(seed=False),
}


class GeminiApiEmulator(GoogleImagesEmulator):
    """The Gemini API on ``http://127.0.0.1:PORT/v1beta``; ``api_key`` is the key it accepts (None: any)."""

    provider: ClassVar[str] = "google"
    _base_path: ClassVar[str] = "/v1beta"
    _malformed_body: ClassVar[bytes] = b'{"candidates": [{"content": {"parts": [{"inlineData": {"data": "iVBOR'
    _vertex: ClassVar[bool] = False

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        match = _CALL.match(request.path)
        if request.method != "POST" or match is None:
            return None
        return self._generate_content if match.group(2) == "generateContent" else self._predict

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        return status_error(status).response()

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return GoogleError(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
        ).response()

    def _authenticate(self, request: RecordedRequest) -> None:
        if self.api_key is None:
            return
        key = request.headers.get("x-goog-api-key")
        if key is None:
            raise GoogleError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API "
                "Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            raise GoogleError(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
            )

    def _imagen_rules(self, request: RecordedRequest) -> ImagenRules:
        return self._rules(request, IMAGEN_MODELS, "predict")

    def _gemini_rules(self, request: RecordedRequest) -> GeminiRules:
        return self._rules(request, GEMINI_MODELS, "generateContent")

    def _rules(self, request: RecordedRequest, table: Mapping[str, _Rules], method: str) -> _Rules:
        match = _CALL.match(request.path)
        assert match is not None
        model = match.group(1)
        rules = table.get(model)
        if rules is None:
            raise GoogleError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for {method}.",
            )
        return rules
