"""The OpenAI Images adapter: ``POST {base}/images/generations`` (``/images/edits``, ``/images/variations``)
with ``Authorization: Bearer <api_key>``.

The request mapping, answer parsing and translation are the shared OpenAI Images wire format
(``kit.openai_images_adapter``); this module says where OpenAI is and how it authenticates.

``default_model()`` is ``gpt-image-2`` (``models.DEFAULT_MODEL`` says why): OpenAI's reference no
longer defaults ``model``, and dall-e-2, its old default, is shut down.

A target with a ``custom_host`` (or a virtual key's base URL) other than OpenAI's own host is any
server speaking OpenAI's images API (vLLM, LocalAI, SiliconFlow, Nscale, ...): there a model
outside OpenAI's families passes through untranslated, every parameter sent as given
(``kit.openai_compatible``), and the answer's translations say so
(``model=<name> passed through untranslated to a custom host``), which the request log records.
On OpenAI itself such parameters are refused naming them, as before.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.openai_compatible import untranslated_body
from imagegateway_server.providers.kit.openai_images import PATHS
from imagegateway_server.providers.kit.openai_images_adapter import OpenAIImagesAdapter
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.openai import PROVIDER
from imagegateway_server.providers.openai.errors import classify_error
from imagegateway_server.providers.openai.models import DEFAULT_MODEL, model_spec

DEFAULT_BASE_URL = "https://api.openai.com/v1"
OPENAI_HOST = "api.openai.com"


class OpenAIAdapter(OpenAIImagesAdapter):
    """Generates images with OpenAI's Images API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def operations(self, model: str) -> frozenset[Operation]:
        return self.family_operations(model)

    def endpoint(self, target: UpstreamTarget) -> str:
        return self.operation_endpoint(target, Operation.GENERATE)

    def operation_endpoint(self, target: UpstreamTarget, operation: Operation) -> str:
        return f"{(target.base_url or self._base_url).rstrip('/')}/{PATHS[operation]}"

    def auth_headers(self, target: UpstreamTarget) -> dict[str, str]:
        return {"Authorization": f"Bearer {target.credential.value(API_KEY) or ''}"}

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)

    def build_body(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        if self.passes_through(model, target):
            return untranslated_body(request, model)
        return super().build_body(request, model, target)

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        result = await super().generate(request, target)
        model = result.model or request.model or self.default_model_name
        if self.passes_through(model, target):
            note = f"model={model} passed through untranslated to a custom host"
            result = dataclasses.replace(result, translations=(*result.translations, note))
        return result

    def passes_through(self, model: str, target: UpstreamTarget) -> bool:
        """Whether ``model`` goes untranslated: a custom host, and a model outside OpenAI's tables."""
        if not target.base_url or model_spec(model) is not None:
            return False
        try:
            host = urlsplit(target.base_url).hostname or ""
        except ValueError:
            return False
        return host.lower() != OPENAI_HOST
