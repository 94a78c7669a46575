"""The OpenAI Images adapter: ``ImageRequest`` → ``POST {base}/images/generations`` → ``ImageResult``.

Field mapping (providers.md §1.3):

| ImageRequest | dall-e-2 | dall-e-3 | gpt-image-*, chatgpt-image-latest |
|---|---|---|---|
| prompt, model, n, size, quality, user | sent | sent | sent |
| style | refused | sent | refused (OpenAI: unknown_parameter) |
| background, output_format, output_compression, moderation | refused | refused | sent |
| response_format | ``b64_json``, or ``url`` when the caller wants URLs | same | never sent (always base64) |
| negative_prompt, seed, cfg_scale, style_preset, aspect_ratio | refused | refused | refused |

Refused parameters raise ``ProviderError(BAD_REQUEST, code="unknown_parameter")`` naming them before
any HTTP call. ``size``, ``n``, ``quality`` and ``style`` are first translated to the model's own
values (``model_params``, ``translation``): a size to the nearest the model makes, ``n`` fanned out
into single-image calls on dall-e-3, ``hd``/``standard`` to gpt-image's ``high``/``medium``; and a
retired model to its successor when the operator enabled that alias (``model_aliases``).

Of the ``extra`` keys only OpenAI's ``stream`` is accepted, and only as ``false``: this adapter
reads one JSON answer. A model outside the known families gets every OpenAI parameter
forwarded and is left to OpenAI to validate.

``default_model()`` is ``dall-e-2`` because that is what OpenAI itself generates with when ``model``
is omitted; sending it explicitly keeps the behaviour identical while logging a concrete model.

When the caller wants bytes and OpenAI answers with a URL, the image is downloaded (without the API
key) into bytes within the same attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.base import UpstreamTarget
from imagegateway_server.providers.http import (
    HttpAdapterBase,
    UpstreamResponse,
    all_or_nothing,
    check_image,
    decode_image_b64,
    describe_bad_body,
    json_object,
    parse_retry_after,
    provider_error,
    request_headers,
    snippet,
    upstream_errors,
)
from imagegateway_server.providers.model_params import openai_spec
from imagegateway_server.providers.translation import translate

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "dall-e-2"


class ModelFamily(enum.Enum):
    """Groups of OpenAI image models that take the same parameters."""

    DALL_E_2 = "dall-e-2"
    DALL_E_3 = "dall-e-3"
    GPT_IMAGE = "gpt-image"
    OTHER = "other"


def model_family(model: str) -> ModelFamily:
    """The parameter family of an OpenAI model name."""
    name = model.lower()
    if name == "dall-e-2":
        return ModelFamily.DALL_E_2
    if name.startswith("dall-e"):
        return ModelFamily.DALL_E_3
    if name.startswith(("gpt-image-", "chatgpt-image-")):
        return ModelFamily.GPT_IMAGE
    return ModelFamily.OTHER


_COMMON = frozenset({"model", "n", "size", "quality", "user"})
_GPT_ONLY = frozenset({"background", "output_format", "output_compression", "moderation", "stream"})
ACCEPTED_PARAMS: Mapping[ModelFamily, frozenset[str]] = {
    ModelFamily.DALL_E_2: _COMMON,
    ModelFamily.DALL_E_3: _COMMON | {"style"},
    ModelFamily.GPT_IMAGE: _COMMON | _GPT_ONLY,
    ModelFamily.OTHER: _COMMON | _GPT_ONLY | {"style"},
}

_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
_SAFETY_MESSAGE_PREFIXES = (
    "your request was rejected as a result of our safety system",
    "your request was rejected by the safety system",
)


class OpenAIAdapter(HttpAdapterBase):
    """Generates images with OpenAI's Images API."""

    name: str = "openai"
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        plan = translate(request, provider=self.name, model=request.model or DEFAULT_MODEL,
                         spec_of=openai_spec, strict=target.strict, aliases=self._aliases)
        request, model = plan.request, plan.model
        self.build_body(request, model)  # refuse unsupported parameters before any call
        if not plan.fan_out:
            return plan.finish(await self._generate_once(request, model, target))
        # dall-e-3 makes one image per call: fan n out in parallel rather than refuse or clamp it.
        single = dataclasses.replace(request, n=1)
        parts = await all_or_nothing([self._generate_once(single, model, target) for _ in range(request.n)])
        ids = [part.provider_request_id for part in parts if part.provider_request_id]
        return plan.finish(ImageResult(
            images=tuple(image for part in parts for image in part.images), model=model,
            created=min(part.created for part in parts), provider_request_id=",".join(ids) or None,
        ))

    async def _generate_once(self, request: ImageRequest, model: str, target: UpstreamTarget) -> ImageResult:
        body = self.build_body(request, model)
        own = {"Authorization": f"Bearer {target.api_key}", "Accept": "application/json"}
        headers = request_headers(self.name, target.headers, own)
        url = f"{(target.base_url or self._base_url).rstrip('/')}/images/generations"
        async with upstream_errors(self.name, secret=target.api_key, attempt_seconds=target.timeout):
            response = await self._client.send(
                "POST", url,
                provider=self.name, attempt_seconds=target.timeout, max_body_bytes=self._max_body_bytes,
                json_body=body, headers=headers,
            )
            if not 200 <= response.status_code < 300:
                raise classify_error(response, secret=target.api_key)
            return await self._parse_success(response, request, model, target)

    def build_body(self, request: ImageRequest, model: str) -> dict[str, Any]:
        """The JSON body for ``request``; raises BAD_REQUEST naming a parameter OpenAI would not take."""
        family = model_family(model)
        accepted = ACCEPTED_PARAMS[family]
        for name, value in request.set_fields().items():
            if name not in accepted:
                raise ProviderError(
                    ErrorKind.BAD_REQUEST,
                    f"openai: parameter {name!r} is not supported by model {model!r}",
                    provider=self.name, status_code=400, code="unknown_parameter", param=name,
                )
            if name == "stream" and value is not False:
                raise ProviderError(
                    ErrorKind.BAD_REQUEST,
                    "openai: parameter 'stream' must be false; streamed image generation is not supported",
                    provider=self.name, status_code=400, code="unsupported_value", param="stream",
                )
        body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
        optional: dict[str, Any] = {
            "size": request.size,
            "quality": request.quality,
            "style": request.style,
            "user": request.user,
            "background": request.background,
            "output_format": request.output_format,
            "output_compression": request.output_compression,
            "moderation": request.moderation,
            "stream": request.extra.get("stream"),
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        wants_url = request.response_format is ResponseFormat.URL
        if family in (ModelFamily.DALL_E_2, ModelFamily.DALL_E_3):
            body["response_format"] = "url" if wants_url else "b64_json"
        elif family is ModelFamily.OTHER and wants_url:
            body["response_format"] = "url"
        return body

    async def _parse_success(
        self, response: UpstreamResponse, request: ImageRequest, model: str, target: UpstreamTarget
    ) -> ImageResult:
        secret = target.api_key
        status = response.status_code
        payload = json_object(response.body)
        if payload is None:
            what = describe_bad_body(response.body)
            raise _bug(f"openai: upstream returned HTTP {status} with {what}", secret)
        data = payload.get("data")
        if not isinstance(data, list) or not data:
            raise _bug(f"openai: upstream returned HTTP {status} without images in 'data'", secret)
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
        secret = target.api_key
        if not isinstance(item, dict):
            raise _bug("openai: an item of 'data' is not an object", secret)
        revised = item.get("revised_prompt")
        revised_prompt = revised if isinstance(revised, str) else None
        b64 = item.get("b64_json")
        url = item.get("url")
        if b64 is not None:
            data = decode_image_b64(b64, provider=self.name, secret=secret)
        elif isinstance(url, str) and url:
            if wants_url:
                # dall-e URLs are PNGs; the bytes are not fetched, so nothing to sniff.
                return GeneratedImage(
                    data=None, mime_type="image/png", url=url, revised_prompt=revised_prompt
                )
            data = await self._download(url, target)
        else:
            raise _bug("openai: an item of 'data' has neither 'b64_json' nor 'url'", secret)
        mime, width, height = check_image(data, provider=self.name, secret=secret)
        return GeneratedImage(
            data=data, mime_type=mime, width=width, height=height, revised_prompt=revised_prompt
        )

    async def _download(self, url: str, target: UpstreamTarget) -> bytes:
        try:
            scheme = urlsplit(url).scheme
        except ValueError:  # e.g. an unbalanced "[" in the host: the upstream's bug, not ours
            scheme = ""
        if scheme not in ("http", "https"):
            raise _bug("openai: upstream returned an image URL that is not http(s)", target.api_key)
        # No Authorization header: the URL is pre-signed and the API key must not leave for a CDN.
        response = await self._client.send(
            "GET", url,
            provider=self.name, attempt_seconds=target.timeout, max_body_bytes=self._max_body_bytes,
        )
        if response.status_code != 200:
            raise _bug(f"openai: downloading the generated image failed with HTTP {response.status_code}",
                       target.api_key)
        return response.body


def classify_error(response: UpstreamResponse, *, secret: str) -> ProviderError:
    """Classifies a non-2xx OpenAI answer from its status and error envelope."""
    status = response.status_code
    envelope = _envelope(response.body)
    upstream_message = envelope.get("message") or (
        snippet(response.body) if response.body.strip() else "no error body"
    )
    code = envelope.get("code")
    param = envelope.get("param")
    message = f"openai returned HTTP {status}: {upstream_message}"
    retry_after = parse_retry_after(response.headers)
    safety = code in _CONTENT_POLICY_CODES or upstream_message.lower().startswith(_SAFETY_MESSAGE_PREFIXES)
    if 400 <= status < 500 and safety:
        kind = ErrorKind.CONTENT_POLICY
        code = code or "content_policy_violation"
    elif status == 401:
        kind = ErrorKind.AUTHENTICATION
    elif status == 403:
        kind = ErrorKind.PERMISSION_DENIED
    elif status == 404:
        kind = ErrorKind.NOT_FOUND
    elif status == 408:
        kind = ErrorKind.TIMEOUT
    elif status == 429:
        kind = ErrorKind.RATE_LIMITED
    elif status == 409 or status >= 500:
        kind = ErrorKind.UNAVAILABLE
    elif 400 <= status < 500:
        kind = ErrorKind.BAD_REQUEST
    else:
        return provider_error(
            "openai", ErrorKind.UPSTREAM_BUG, f"openai returned unexpected HTTP {status}",
            secret=secret, status_code=502, code="unexpected_status",
        )
    return provider_error(
        "openai", kind, message,
        secret=secret, status_code=status, code=code, param=param, retry_after=retry_after,
    )


def _envelope(body: bytes) -> dict[str, str]:
    """``message``/``type``/``code``/``param`` of an OpenAI error body, whichever are strings."""
    payload = json_object(body)
    if payload is None:
        return {}
    error = payload.get("error", payload)
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return {}
    return {k: v for k in ("message", "type", "code", "param") if isinstance(v := error.get(k), str) and v}


def _bug(message: str, secret: str) -> ProviderError:
    return provider_error(
        "openai", ErrorKind.UPSTREAM_BUG, message, secret=secret, status_code=502, code="malformed_response"
    )
