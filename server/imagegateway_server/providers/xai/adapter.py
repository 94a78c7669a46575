"""The xAI adapter: ``POST {base}/images/generations`` with ``Authorization: Bearer <api_key>``.

xAI answers in OpenAI's shape (``data[]`` with ``url`` or ``b64_json`` and ``revised_prompt``), so
the kit's OpenAI Images adapter reads it. What differs is the request: xAI refuses ``size``, so a
size is translated before the call to the model's ``aspect_ratio`` and ``resolution`` (``models``)
or, on grok-2-image, refused unless it is the 1024x768 that model makes.

``default_model()`` is grok-imagine-image, xAI's current image model.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult
from imagegateway_server.providers.kit.errors import Secrets, refuse_parameter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.model_spec import ModelSpec
from imagegateway_server.providers.kit.openai_images_adapter import BearerImagesAdapter
from imagegateway_server.providers.kit.sizes import AUTO, requested_size
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.xai import PROVIDER
from imagegateway_server.providers.xai.errors import classify_error
from imagegateway_server.providers.xai.models import DEFAULT_MODEL, GROK_2_SIZE, is_grok_2, model_spec, resolution_for
from imagegateway_server.providers.xai.request import build_body

DEFAULT_BASE_URL = "https://api.x.ai/v1"


class XAIAdapter(BearerImagesAdapter):
    """Generates images with xAI's image API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL
    url_mime_type = "image/jpeg"  # xAI serves JPEGs

    def model_spec(self, model: str) -> ModelSpec | None:
        return model_spec(model)

    def build_body(self, request: ImageRequest, model: str, target: UpstreamTarget) -> dict[str, Any]:
        return build_body(request, model)

    def classify_error(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        return classify_error(response, secret=secret)

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        sized = self._sized(request, target.strict)
        result = await super().generate(sized, target)
        resolution = sized.extra.get("resolution")
        if resolution is not None and "resolution" not in request.extra:
            note = f"size={request.size}->resolution={resolution}"
            result = dataclasses.replace(result, translations=(*result.translations, note))
        return result

    def _sized(self, request: ImageRequest, strict: bool) -> ImageRequest:
        """The request with a size's ``resolution`` chosen (the ratio is translation's), or a grok-2 size refused."""
        size = request.size
        if size is None or size == AUTO:
            return request
        model = request.model or self.default_model_name
        width, height = requested_size(self.name, size)
        if is_grok_2(model):
            if (width, height) != GROK_2_SIZE:
                raise refuse_parameter(
                    self.name,
                    "size",
                    f"{size!r} is not a size {model!r} makes: it makes 1024x768 only",
                    "unsupported_value",
                )
            return request
        if model_spec(model) is None or "resolution" in request.extra:
            return request
        resolution = resolution_for(width, height)
        if strict and (width, height) not in ((1024, 1024), (2048, 2048)):
            raise refuse_parameter(
                self.name,
                "size",
                f"{size!r} becomes aspect_ratio and resolution={resolution} on xAI; strict mode refuses that",
            )
        extra = MappingProxyType({**request.extra, "resolution": resolution})
        return dataclasses.replace(request, extra=extra)
