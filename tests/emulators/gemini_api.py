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
from typing import ClassVar

from .emulator import AnswerMode, Emulator, Endpoint
from .google_rules import (
    BLOCKED_PROMPT,
    GeminiRules,
    GoogleError,
    ImagenRules,
    content_filtered,
    content_image,
    parse_generate_content,
    parse_predict,
    predictions,
    prompt_blocked,
    status_error,
)
from .recording import RecordedRequest
from .server import Response

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


class GeminiApiEmulator(Emulator):
    """The Gemini API on ``http://127.0.0.1:PORT/v1beta``; ``api_key`` is the key it accepts (None: any)."""

    provider: ClassVar[str] = "google"
    _base_path: ClassVar[str] = "/v1beta"
    _malformed_body: ClassVar[bytes] = b'{"candidates": [{"content": {"parts": [{"inlineData": {"data": "iVBOR'

    def __init__(
        self, api_key: str | None = None, *, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 1000
    ) -> None:
        super().__init__(api_key, host=host, port=port, max_recorded=max_recorded)
        self._drop_next = 0

    def drop_next_images(self, count: int) -> None:
        """The next Imagen answer drops ``count`` of its images as its safety filter would."""
        self._drop_next = count

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        match = _CALL.match(request.path)
        if request.method != "POST" or match is None:
            return None
        return self._generate_content if match.group(2) == "generateContent" else self._predict

    def _not_found(self, request: RecordedRequest) -> Response:
        return GoogleError(
            404, "NOT_FOUND", f"The requested URL {request.path} was not found on this server."
        ).response()

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        return status_error(status).response()

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return GoogleError(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
        ).response()

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        if request.path.endswith(":predict"):
            return GoogleError(400, "INVALID_ARGUMENT", BLOCKED_PROMPT).response()
        return prompt_blocked()

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

    def _model(self, request: RecordedRequest, table: Mapping[str, object], method: str) -> str:
        match = _CALL.match(request.path)
        assert match is not None
        model = match.group(1)
        if model not in table:
            raise GoogleError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for {method}.",
            )
        return model

    def _predict(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            model = self._model(request, IMAGEN_MODELS, "predict")
            call = parse_predict(request.json, IMAGEN_MODELS[model], vertex=False)
        except GoogleError as error:
            return error.response()
        dropped, self._drop_next = (call.count if mode.content_filtered else self._drop_next), 0
        return predictions(call, dropped=dropped)

    def _generate_content(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            model = self._model(request, GEMINI_MODELS, "generateContent")
            call = parse_generate_content(request.json, GEMINI_MODELS[model], vertex=False)
        except GoogleError as error:
            return error.response()
        return content_filtered() if mode.content_filtered else content_image(call)
