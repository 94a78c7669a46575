"""The Gemini API adapter: ``{base}/models/{model}:generateContent`` or ``:predict`` with ``x-goog-api-key``.

``base`` is ``https://generativelanguage.googleapis.com/v1beta``, or the target's ``custom_host``
(Portkey's meaning: it replaces that whole base). The key travels in ``x-goog-api-key``, never in
the URL, so it cannot reach a log line that prints URLs.
"""

from __future__ import annotations

from urllib.parse import quote

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.providers.google import PROVIDER
from imagegateway_server.providers.google.models import DEFAULT_MODEL, MODELS
from imagegateway_server.providers.kit.google_adapter import Authorization, GoogleImagesAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
API_KEY_HEADER = "x-goog-api-key"


class GeminiApiAdapter(GoogleImagesAdapter):
    """Generates images with Gemini and Imagen models on the Gemini API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL
    models = MODELS

    def model_url(self, target: UpstreamTarget, model: str, method: str) -> str:
        base = (target.base_url or self._base_url).rstrip("/")
        return f"{base}/models/{quote(model, safe='.-_')}:{method}"

    async def authorize(self, target: UpstreamTarget) -> Authorization:
        key = target.credential.value(API_KEY) or ""
        return Authorization({API_KEY_HEADER: key}, key)
