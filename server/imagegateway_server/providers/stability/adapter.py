"""The Stability AI adapter: ``ImageRequest`` → Stability's v1 or v2beta text-to-image API → ``ImageResult``;
edits and variations go to v2beta's inpainting and image-to-image (``edits``).

The request is first translated to the model's own values (``models``, ``kit.translation``), then
routed to the endpoint serving the model (``models.route``) and mapped to a v1 JSON body or to one
v2beta form per image (``request``), refusing what the model does not take before any HTTP call.
v2beta makes one image per call, so ``n`` images are ``n`` concurrent calls that all succeed or
fail together. Answers are read by ``response`` (a content-filtered image is a CONTENT_POLICY
failure, never served) and failures classified by ``errors``.

``default_model()`` is ``core``: Stability's current general-purpose service (v1 is legacy), and the
one that takes every parameter this adapter maps except ``cfg_scale``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.masks import alpha_to_luminance
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.translation import translate
from imagegateway_server.providers.kit.transport import FilePart, UpstreamResponse
from imagegateway_server.providers.stability import PROVIDER
from imagegateway_server.providers.stability.edits import check_edit, edit_forms, image_to_image_model, uses_inpaint
from imagegateway_server.providers.stability.errors import classify_error
from imagegateway_server.providers.stability.models import DEFAULT_MODEL, model_spec, route
from imagegateway_server.providers.stability.request import check_params, own_headers, v1_body, v2_forms
from imagegateway_server.providers.stability.response import parse_v1, parse_v2

DEFAULT_BASE_URL = "https://api.stability.ai"


class StabilityAdapter(HttpAdapterBase):
    """Generates images with Stability AI's v1 and v2beta APIs."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    def operations(self, model: str) -> frozenset[Operation]:
        # Edits by inpainting or image-to-image, variations by image-to-image (``edits``), whatever the model.
        return frozenset(Operation)

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        if request.operation is not Operation.GENERATE:
            return await self._edit(request, target)
        plan = translate(
            request,
            provider=self.name,
            model=request.model or DEFAULT_MODEL,
            spec_of=model_spec,
            strict=target.strict,
            aliases=self._aliases,
        )
        request, model = plan.request, plan.model
        where = route(model)
        check_params(request, model, where)
        secret = target.credential.secret_values()
        own = own_headers(request, target.credential.value(API_KEY) or "")
        headers = request_headers(self.name, target.headers, own)
        base = (target.base_url or self._base_url).rstrip("/")
        if where.api == "v1":
            body = v1_body(request, where.endpoint)
            url = f"{base}/v1/generation/{where.endpoint}/text-to-image"
            async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
                response = await self._post(url, target, headers=headers, json_body=body)
                images = parse_v1(response, secret=secret)
            request_ids = [response.headers.get("x-request-id")]
        else:
            forms = v2_forms(request, where)
            url = f"{base}/v2beta/stable-image/generate/{where.endpoint}"
            async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
                results = await all_or_nothing([self._one_v2(url, target, headers, form) for form in forms])
            images = tuple(image for image, _ in results)
            request_ids = [rid for _, rid in results]
        ids = [rid for rid in request_ids if rid]
        return plan.finish(
            ImageResult(
                images=images,
                model=model,
                created=int(time.time()),
                provider_request_id=",".join(ids) or None,
            )
        )

    async def _edit(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        """An edit or a variation (``edits``): checked before any call, the mask converted off the loop."""
        model = request.model or DEFAULT_MODEL
        notes = check_edit(request, strict=target.strict)
        secret = target.credential.secret_values()
        own = own_headers(request, target.credential.value(API_KEY) or "")
        headers = request_headers(self.name, target.headers, own)
        mask = request.mask
        luminance = await asyncio.to_thread(alpha_to_luminance, mask.data, provider=self.name) if mask else None
        path, forms = edit_forms(request, model, luminance)
        url = f"{(target.base_url or self._base_url).rstrip('/')}{path}"
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            results = await all_or_nothing(
                [self._one_v2(url, target, headers, fields, files) for fields, files in forms]
            )
        ids = [rid for _, rid in results if rid]
        served = "inpaint" if uses_inpaint(request) else image_to_image_model(model)
        images = tuple(
            dataclasses.replace(image, provider=self.name, model=served, size=f"{image.width}x{image.height}")
            for image, _ in results
        )
        return ImageResult(
            images=images,
            model=served,
            created=int(time.time()),
            provider_request_id=",".join(ids) or None,
            translations=notes,
        )

    async def _one_v2(
        self,
        url: str,
        target: UpstreamTarget,
        headers: Mapping[str, str],
        form: list[tuple[str, str]],
        files: Sequence[FilePart] = (),
    ) -> tuple[GeneratedImage, str | None]:
        # Sent as multipart/form-data (v2beta requires it even when no file is uploaded).
        response = await self._post(url, target, headers=headers, form=form, files=files)
        return parse_v2(response, secret=target.credential.secret_values()), response.headers.get("x-request-id")

    async def _post(self, url: str, target: UpstreamTarget, **kwargs: Any) -> UpstreamResponse:
        response = await self._client.send(
            "POST",
            url,
            provider=self.name,
            attempt_seconds=target.timeout,
            max_body_bytes=self._max_body_bytes,
            **kwargs,
        )
        if not 200 <= response.status_code < 300:
            raise classify_error(response, secret=target.credential.secret_values())
        return response
