"""The base of the emulators of OpenAI-shaped image APIs served at ``POST {base}/v1/images/generations``.

Recraft, Together and xAI each serve one such endpoint; a subclass validates and answers it in
``_generations`` and says how its errors look.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from .emulator import AnswerMode, Emulator, Endpoint
from .recording import RecordedRequest
from .server import Response

GENERATIONS_PATH = "/v1/images/generations"


class GenerationsEmulator(Emulator):
    """An image API on ``http://127.0.0.1:PORT/v1`` whose one endpoint is ``POST /v1/images/generations``."""

    _base_path: ClassVar[str] = "/v1"

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method == "POST" and request.path.rstrip("/") == GENERATIONS_PATH:
            return self._generations
        return None

    @abc.abstractmethod
    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        """Validates a generations request as the provider does and answers it."""
