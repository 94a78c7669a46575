"""The OpenAI Images adapter: ``POST {base}/images/generations`` with ``Authorization: Bearer <api_key>``.

The request mapping, answer parsing and translation are the shared OpenAI Images wire format
(``kit.openai_images_adapter``); this module says where OpenAI is and how it authenticates.

``default_model()`` is ``dall-e-2`` because that is what OpenAI itself generates with when ``model``
is omitted; sending it explicitly keeps the behaviour identical while logging a concrete model.
"""

from __future__ import annotations

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.openai_images_adapter import OpenAIImagesAdapter
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.openai import PROVIDER
from imagegateway_server.providers.openai.errors import classify_error
from imagegateway_server.providers.openai.models import DEFAULT_MODEL, model_spec

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIAdapter(OpenAIImagesAdapter):
    """Generates images with OpenAI's Images API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def endpoint(self, target: UpstreamTarget) -> str:
        return f"{(target.base_url or self._base_url).rstrip('/')}/images/generations"

    def auth_headers(self, target: UpstreamTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.credential.value(API_KEY) or ''}"}

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)
