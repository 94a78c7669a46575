"""The Recraft adapter: ``POST {base}/images/generations`` with ``Authorization: Bearer <api_key>``.

Recraft answers in OpenAI's shape (``data[]`` with ``url`` or ``b64_json``, plus ``image_id``), so
the kit's OpenAI Images adapter reads it; this module says where Recraft is, how it authenticates,
which body it takes (``request``) and how its errors read (``errors``). Recraft's URLs are
temporary (about a day): a caller that asked for ``url`` gets the provider's URL as it is.

``default_model()`` is recraftv4_1, Recraft's own default.
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
from imagegateway_server.providers.recraft import PROVIDER
from imagegateway_server.providers.recraft.errors import classify_error
from imagegateway_server.providers.recraft.models import DEFAULT_MODEL, model_spec
from imagegateway_server.providers.recraft.request import build_body

DEFAULT_BASE_URL = "https://external.api.recraft.ai/v1"


class RecraftAdapter(BearerImagesAdapter):
    """Generates images with Recraft's image API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def build_body(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        return build_body(request, model)

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)
