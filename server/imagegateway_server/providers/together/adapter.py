"""The Together AI adapter: ``POST {base}/images/generations`` with ``Authorization: Bearer <api_key>``.

Together's answer is OpenAI's shape (``data[]`` items with ``b64_json`` or ``url``, tagged by
``type``), so the kit's OpenAI Images adapter reads it; this module says where Together is, how it
authenticates, which body it takes (``request``) and how its errors read (``errors``).

``default_model()`` is FLUX.1 [schnell]: Together's cheapest FLUX, and the one its examples use.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.openai_images_adapter import BearerImagesAdapter
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.together import PROVIDER
from imagegateway_server.providers.together.errors import classify_error
from imagegateway_server.providers.together.models import DEFAULT_MODEL, model_spec
from imagegateway_server.providers.together.request import build_body

DEFAULT_BASE_URL = "https://api.together.xyz/v1"


class TogetherAdapter(BearerImagesAdapter):
    """Generates images with Together AI's image API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL
    url_mime_type = "image/jpeg"  # Together's default output format

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def build_body(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        return build_body(request, model)

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)
