"""The OpenAI Images adapter: ``ImageRequest`` → ``POST {base}/images/generations`` → ``ImageResult``.

``size``, ``n``, ``quality`` and ``style`` are first translated to the model's own values
(``models``, ``kit.translation``): a size to the nearest the model makes, ``n`` fanned out into
single-image calls on dall-e-3, ``hd``/``standard`` to gpt-image's ``high``/``medium``; and a retired
model to its successor when the operator enabled that alias (``kit.model_aliases``). ``request``
then builds the body, refusing what the model does not take, before any HTTP call.

``default_model()`` is ``dall-e-2`` because that is what OpenAI itself generates with when ``model``
is omitted; sending it explicitly keeps the behaviour identical while logging a concrete model.

When the caller wants bytes and OpenAI answers with a URL, the image is downloaded (without the API
key) into bytes within the same attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from urllib.parse import urlsplit

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.fan_out import all_or_nothing
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.http_adapter import HttpAdapterBase
from imagegateway_server.providers.kit.images import check_image, decode_image_b64
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.translation import translate
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.openai import PROVIDER
from imagegateway_server.providers.openai.errors import bug, classify_error
from imagegateway_server.providers.openai.models import DEFAULT_MODEL, model_spec
from imagegateway_server.providers.openai.request import build_body

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# A long b64_json arrives decoded by the parse that checks it (``base64_json``), not decoded twice.
_IMAGE_KEYS = frozenset({"b64_json"})


class OpenAIAdapter(HttpAdapterBase):
    """Generates images with OpenAI's Images API."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        plan = translate(
            request,
            provider=self.name,
            model=request.model or DEFAULT_MODEL,
            spec_of=model_spec,
            strict=target.strict,
            aliases=self._aliases,
        )
        request, model = plan.request, plan.model
        build_body(request, model)  # refuse unsupported parameters before any call
        if not plan.fan_out:
            return plan.finish(await self._generate_once(request, model, target))
        # dall-e-3 makes one image per call: fan n out in parallel rather than refuse or clamp it.
        single = dataclasses.replace(request, n=1)
        parts = await all_or_nothing([self._generate_once(single, model, target) for _ in range(request.n)])
        ids = [part.provider_request_id for part in parts if part.provider_request_id]
        return plan.finish(
            ImageResult(
                images=tuple(image for part in parts for image in part.images),
                model=model,
                created=min(part.created for part in parts),
                provider_request_id=",".join(ids) or None,
            )
        )

    async def _generate_once(self, request: ImageRequest, model: str, target: UpstreamTarget) -> ImageResult:
        body = build_body(request, model)
        secret = target.credential.secret_values()
        own = {"Authorization": f"Bearer {target.credential.value(API_KEY) or ''}", "Accept": "application/json"}
        headers = request_headers(self.name, target.headers, own)
        url = f"{(target.base_url or self._base_url).rstrip('/')}/images/generations"
        async with upstream_errors(self.name, secret=secret, attempt_seconds=target.timeout):
            response = await self._client.send(
                "POST",
                url,
                provider=self.name,
                attempt_seconds=target.timeout,
                max_body_bytes=self._max_body_bytes,
                json_body=body,
                headers=headers,
            )
            if not 200 <= response.status_code < 300:
                raise classify_error(response, secret=secret)
            return await self._parse_success(response, request, model, target)

    async def _parse_success(
        self, response: UpstreamResponse, request: ImageRequest, model: str, target: UpstreamTarget
    ) -> ImageResult:
        secret = target.credential.secret_values()
        status = response.status_code
        payload = json_object(response.body, image_keys=_IMAGE_KEYS)
        if payload is None:
            what = describe_bad_body(response.body)
            raise bug(f"openai: upstream returned HTTP {status} with {what}", secret)
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            raise bug(f"openai: upstream returned HTTP {status} without images in 'data'", secret)
        wants_url = request.response_format is ResponseFormat.URL
        images = await asyncio.gather(*(self._image(item, wants_url, target) for item in data))
        created = payload.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            created = int(time.time())
        usage = payload.get("usage")
        return ImageResult(
            images=tuple(images),
            model=model,
            created=created,
            provider_request_id=response.headers.get("x-request-id"),
            usage=usage if isinstance(usage, dict) else None,
        )

    async def _image(self, item: object, wants_url: bool, target: UpstreamTarget) -> GeneratedImage:
        secret = target.credential.secret_values()
        if not isinstance(item, dict):
            raise bug("openai: an item of 'data' is not an object", secret)
        revised = item.get("revised_prompt")
        revised_prompt = revised if isinstance(revised, str) else None
        b64 = item.get("b64_json")
        url = item.get("url")
        if isinstance(b64, DecodedBase64):
            data = b64.data
        elif b64 is not None:
            data = decode_image_b64(b64, provider=self.name, secret=secret)
        elif isinstance(url, str) and url:
            if wants_url:
                # dall-e URLs are PNGs; the bytes are not fetched, so nothing to sniff.
                return GeneratedImage(data=None, mime_type="image/png", url=url, revised_prompt=revised_prompt)
            data = await self._download(url, target)
        else:
            raise bug("openai: an item of 'data' has neither 'b64_json' nor 'url'", secret)
        mime, width, height = check_image(data, provider=self.name, secret=secret)
        return GeneratedImage(data=data, mime_type=mime, width=width, height=height, revised_prompt=revised_prompt)

    async def _download(self, url: str, target: UpstreamTarget) -> bytes:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:  # e.g. an unbalanced "[" in the host: the upstream's bug, not ours
            scheme = ""
        if scheme not in ("http", "https"):
            raise bug("openai: upstream returned an image URL that is not http(s)", target.credential.secret_values())
        # No Authorization header: the URL is pre-signed and the API key must not leave for a CDN.
        response = await self._client.send(
            "GET",
            url,
            provider=self.name,
            attempt_seconds=target.timeout,
            max_body_bytes=self._max_body_bytes,
        )
        if response.status_code != 200:
            raise bug(
                f"openai: downloading the generated image failed with HTTP {response.status_code}",
                target.credential.secret_values(),
            )
        return response.body
