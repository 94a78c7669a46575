"""The base of the Gemini API and Vertex AI emulators: Imagen ``:predict`` and Gemini ``:generateContent``.

Both APIs take the same bodies (``google_rules``, with Vertex's variant) and answer the same way;
they differ in how a call authenticates and names its model. A subclass says that
(``_authenticate``, ``_imagen_rules``, ``_gemini_rules``) and routes its paths to ``_predict`` and
``_generate_content``. Faults: ``content_filter`` is the safety filter (every Imagen image dropped;
Gemini's ``IMAGE_SAFETY``), ``moderation_denied`` the blocked prompt, ``drop_next_images(k)`` a
partial Imagen answer.
"""

from __future__ import annotations

import abc
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
)
from .recording import RecordedRequest
from .server import Response


class GoogleImagesEmulator(Emulator):
    """Imagen and Gemini model calls as Google answers them; ``_vertex`` picks Vertex's body rules."""

    _vertex: ClassVar[bool]
    # Imagen images the next answer drops (``drop_next_images``); set per instance once used.
    _drop_next: int = 0

    def drop_next_images(self, count: int) -> None:
        """The next Imagen answer drops ``count`` of its images as its safety filter would."""
        self._drop_next = count

    @abc.abstractmethod
    def _authenticate(self, request: RecordedRequest) -> None:
        """Raises the GoogleError of a call that is not authenticated."""

    @abc.abstractmethod
    def _imagen_rules(self, request: RecordedRequest) -> ImagenRules:
        """The rules of the Imagen model a ``:predict`` call names; GoogleError when it is not served."""

    @abc.abstractmethod
    def _gemini_rules(self, request: RecordedRequest) -> GeminiRules:
        """The rules of the Gemini model a ``:generateContent`` call names; GoogleError when it is not served."""

    def _not_found(self, request: RecordedRequest) -> Response:
        return GoogleError(
            404, "NOT_FOUND", f"The requested URL {request.path} was not found on this server."
        ).response()

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        if request.path.endswith(":predict"):
            return GoogleError(400, "INVALID_ARGUMENT", BLOCKED_PROMPT).response()
        return prompt_blocked()

    def _predict(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            call = parse_predict(request.json, self._imagen_rules(request), vertex=self._vertex)
        except GoogleError as error:
            return error.response()
        dropped, self._drop_next = (call.count if mode.content_filtered else self._drop_next), 0
        return predictions(call, dropped=dropped)

    def _generate_content(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            call = parse_generate_content(request.json, self._gemini_rules(request), vertex=self._vertex)
        except GoogleError as error:
            return error.response()
        return content_filtered() if mode.content_filtered else content_image(call)
