"""The Stability AI adapter: ``ImageRequest`` → Stability's v1 or v2beta text-to-image API → ``ImageResult``.

Model routing (providers.md §4):

| model | endpoint (POST) | body |
|---|---|---|
| ``stable-diffusion-v1-6`` | ``/v1/generation/{engine}/text-to-image`` | JSON |
| ``stable-diffusion-xl-1024-v1-0`` | ``/v1/generation/{engine}/text-to-image`` | JSON |
| ``core`` / ``stable-image-core`` | ``/v2beta/stable-image/generate/core`` | multipart |
| ``ultra`` / ``stable-image-ultra`` | ``/v2beta/stable-image/generate/ultra`` | multipart |
| ``sd3``, ``sd3-*``, ``sd3.5-*`` | ``/v2beta/stable-image/generate/sd3`` | multipart |

For sd3 the form's ``model`` field carries the name (``sd3.5-large``...), except for bare ``sd3``
which leaves Stability's default.

Field mapping:

| ImageRequest | v1 | v2beta |
|---|---|---|
| prompt / negative_prompt | ``text_prompts`` at weight 1 / -1 | ``prompt`` / ``negative_prompt`` |
| n | ``samples`` | n concurrent calls (one image each); a set seed becomes seed, seed+1, ... |
| size | ``width``/``height``, the nearest the engine makes (1) | nearest of the nine ``aspect_ratio`` values (1) |
| aspect_ratio | refused | ``aspect_ratio`` (one of the nine) |
| seed, style_preset | sent | sent |
| cfg_scale | sent | sd3 only, refused elsewhere |
| output_format | ``png`` only (v1 makes PNG) | sent |
| user | header ``stability-client-user-id`` | same |
| quality | ``steps`` (low 20, medium/standard 30, high/hd 50) (1) | refused (``auto`` only) |
| style, background, output_compression, moderation | refused | refused |
| extra ``steps``, ``sampler``, ``clip_guidance_preset`` | sent | refused |

(1) Translated before the call by ``translation.translate`` from the ``model_params`` tables, and
reported in ``ImageResult.translations``; in strict mode refused instead. None or ``auto`` means the
engine default, 1024x1024 for SDXL and 512x512 for v1-6. An enabled alias (``model_aliases``) may
first replace the model.

Refused parameters raise ``ProviderError(BAD_REQUEST)`` naming them before any HTTP call.

``default_model()`` is ``core``: Stability's current general-purpose service (v1 is legacy, see
providers.md §4.2), and the one that takes every parameter this adapter maps except ``cfg_scale``.

Errors: 403 ``content_moderation``, 400 ``invalid_prompts`` and 422 ``public_figure`` are
CONTENT_POLICY; a 429 without Retry-After waits 60 s (Stability's lock-out); the rest by status.

A content-filtered answer (v1 ``finishReason`` CONTENT_FILTERED or ERROR, v2beta ``finish_reason``
CONTENT_FILTERED) is a CONTENT_POLICY failure: Stability returns a blurred image with HTTP 200 and that
image is never handed back.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from imagegateway_server.domain.errors import ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.request import ImageRequest, parse_size
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers import sizes
from imagegateway_server.providers.base import UpstreamTarget
from imagegateway_server.providers.http import (
    HttpAdapterBase,
    UpstreamResponse,
    all_or_nothing,
    check_image,
    decode_image_b64,
    describe_bad_body,
    header_value_ok,
    json_object,
    parse_retry_after,
    provider_error,
    request_headers,
    snippet,
    upstream_errors,
)
from imagegateway_server.providers.model_params import stability_spec
from imagegateway_server.providers.translation import translate

PROVIDER = "stability-ai"
DEFAULT_BASE_URL = "https://api.stability.ai"
DEFAULT_MODEL = "core"

SD_V1_6 = "stable-diffusion-v1-6"
SDXL_1_0 = "stable-diffusion-xl-1024-v1-0"
V1_ENGINES = frozenset({SD_V1_6, SDXL_1_0})
SDXL_SIZES: tuple[tuple[int, int], ...] = tuple(sizes.SDXL_SIZES.sizes())
V1_DEFAULT_SIZE = {SD_V1_6: (512, 512), SDXL_1_0: (1024, 1024)}
ASPECT_RATIOS = sizes.STABILITY_ASPECT_RATIOS.ratios
MAX_SEED = 4_294_967_294
# Stability documents no Retry-After; a tripped rate limit locks the key out for 60 s.
RATE_LIMIT_LOCKOUT_SECONDS = 60.0
MAX_CLIENT_HEADER_CHARS = 256

_COMMON = frozenset(
    {"model", "n", "size", "seed", "style_preset", "negative_prompt", "user", "output_format"}
)
_V1_PARAMS = _COMMON | {"cfg_scale", "steps", "sampler", "clip_guidance_preset"}
_V2_PARAMS = _COMMON | {"aspect_ratio"}
_V1_EXTRA = ("steps", "sampler", "clip_guidance_preset")
_FILTERED_FINISH = frozenset({"CONTENT_FILTERED", "ERROR"})



@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """Where a model is served: a v1 engine, or a v2beta service (with the sd3 ``model`` field)."""

    api: str  # "v1" or "v2beta"
    endpoint: str  # v1 engine id, or core | ultra | sd3
    sd3_model: str | None = None

    @property
    def accepted(self) -> frozenset[str]:
        if self.api == "v1":
            return _V1_PARAMS
        return _V2_PARAMS | {"cfg_scale"} if self.endpoint == "sd3" else _V2_PARAMS


def route(model: str) -> Route:
    """The endpoint serving ``model``; an unknown model is a BAD_REQUEST naming ``model``."""
    name = model.lower()
    if name in V1_ENGINES:
        return Route("v1", name)
    if name in ("core", "stable-image-core"):
        return Route("v2beta", "core")
    if name in ("ultra", "stable-image-ultra"):
        return Route("v2beta", "ultra")
    if name == "sd3":
        return Route("v2beta", "sd3")
    if name.startswith(("sd3-", "sd3.")):
        return Route("v2beta", "sd3", sd3_model=name)
    known = ", ".join(sorted(V1_ENGINES | {"core", "ultra", "sd3", "sd3.5-large", "sd3.5-medium"}))
    raise ProviderError(
        ErrorKind.BAD_REQUEST,
        f"{PROVIDER}: model {model!r} is not a Stability image model (known: {known})",
        provider=PROVIDER, status_code=400, code="invalid_value", param="model",
    )


def v1_dimensions(engine: str, size: str | None) -> tuple[int, int]:
    """Width and height for a v1 engine; a size the engine cannot make is a BAD_REQUEST naming ``size``."""
    if size is None or size == "auto":
        return V1_DEFAULT_SIZE[engine]
    width, height = _parse_size(size)
    if engine == SDXL_1_0:
        if (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
            raise _refuse("size", f"{size!r} is not a size {engine} makes; allowed: {allowed}",
                          "invalid_value")
    elif not all(320 <= side <= 1536 and side % 64 == 0 for side in (width, height)):
        raise _refuse(
            "size", f"{size!r} does not fit {engine}: each side must be a multiple of 64 from 320 to 1536",
            "invalid_value",
        )
    return width, height


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The allowed v2beta aspect ratio closest to width:height (exact when one matches)."""
    return sizes.STABILITY_ASPECT_RATIOS.nearest(width, height)[0]


class StabilityAdapter(HttpAdapterBase):
    """Generates images with Stability AI's v1 and v2beta APIs."""

    name: str = PROVIDER
    default_base_url = DEFAULT_BASE_URL
    default_model_name = DEFAULT_MODEL

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        plan = translate(request, provider=self.name, model=request.model or DEFAULT_MODEL,
                         spec_of=stability_spec, strict=target.strict, aliases=self._aliases)
        request, model = plan.request, plan.model
        where = route(model)
        _check_params(request, model, where)
        own = {"Authorization": f"Bearer {target.api_key}", "Accept": "application/json"}
        if request.user is not None:
            if len(request.user) > MAX_CLIENT_HEADER_CHARS or not header_value_ok(request.user):
                limit = f"must be at most {MAX_CLIENT_HEADER_CHARS} visible ASCII characters"
                raise _refuse("user", limit, "invalid_value")
            own["stability-client-user-id"] = request.user
        headers = request_headers(self.name, target.headers, own)
        base = (target.base_url or self._base_url).rstrip("/")
        if where.api == "v1":
            body = v1_body(request, where.endpoint)
            url = f"{base}/v1/generation/{where.endpoint}/text-to-image"
            async with upstream_errors(self.name, secret=target.api_key, attempt_seconds=target.timeout):
                response = await self._post(url, target, headers=headers, json_body=body)
                images = _parse_v1(response, secret=target.api_key)
            request_ids = [response.headers.get("x-request-id")]
        else:
            forms = v2_forms(request, where)
            url = f"{base}/v2beta/stable-image/generate/{where.endpoint}"
            async with upstream_errors(self.name, secret=target.api_key, attempt_seconds=target.timeout):
                results = await all_or_nothing(
                    [self._one_v2(url, target, headers, form) for form in forms]
                )
            images = tuple(image for image, _ in results)
            request_ids = [rid for _, rid in results]
        ids = [rid for rid in request_ids if rid]
        return plan.finish(ImageResult(
            images=images,
            model=model,
            created=int(time.time()),
            provider_request_id=",".join(ids) or None,
        ))

    async def _one_v2(
        self, url: str, target: UpstreamTarget, headers: Mapping[str, str], form: list[tuple[str, str]]
    ) -> tuple[GeneratedImage, str | None]:
        # Sent as multipart/form-data (v2beta requires it even when no file is uploaded).
        response = await self._post(url, target, headers=headers, form=form)
        return _parse_v2(response, secret=target.api_key), response.headers.get("x-request-id")

    async def _post(self, url: str, target: UpstreamTarget, **kwargs: Any) -> UpstreamResponse:
        response = await self._client.send(
            "POST", url,
            provider=self.name, attempt_seconds=target.timeout, max_body_bytes=self._max_body_bytes,
            **kwargs,
        )
        if not 200 <= response.status_code < 300:
            raise classify_error(response, secret=target.api_key)
        return response


def _check_params(request: ImageRequest, model: str, where: Route) -> None:
    accepted = where.accepted
    for name in request.set_fields():
        if name not in accepted:
            raise _refuse(name, f"is not supported by model {model!r}", "unknown_parameter")
    if where.api == "v1" and request.output_format not in (None, "png"):
        raise _refuse("output_format", f"model {model!r} only produces png", "invalid_value")
    ratio = request.aspect_ratio
    if where.api == "v2beta" and ratio is not None and ratio not in ASPECT_RATIOS:
        raise _refuse("aspect_ratio", f"must be one of {', '.join(ASPECT_RATIOS)}", "invalid_value")


def v1_body(request: ImageRequest, engine: str) -> dict[str, Any]:
    """The v1 text-to-image JSON body."""
    width, height = v1_dimensions(engine, request.size)
    prompts: list[dict[str, Any]] = [{"text": request.prompt, "weight": 1}]
    if request.negative_prompt:
        prompts.append({"text": request.negative_prompt, "weight": -1})
    body: dict[str, Any] = {"text_prompts": prompts, "width": width, "height": height, "samples": request.n}
    optional: dict[str, Any] = {
        "seed": request.seed,
        "cfg_scale": request.cfg_scale,
        "style_preset": request.style_preset,
        **{name: request.extra.get(name) for name in _V1_EXTRA},
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def v2_forms(request: ImageRequest, where: Route) -> list[list[tuple[str, str]]]:
    """One multipart form (as ordered name/value pairs) per image to generate.

    ``request`` is translated: a size has already become its ``aspect_ratio``.
    """
    forms = []
    for index in range(request.n):
        seed = request.seed
        if seed:
            # Same seed n times would give n identical images; step it as samples do on v1.
            seed = (seed + index - 1) % MAX_SEED + 1
        fields: list[tuple[str, Any]] = [
            ("prompt", request.prompt),
            ("negative_prompt", request.negative_prompt),
            ("aspect_ratio", request.aspect_ratio),
            ("seed", seed),
            ("output_format", request.output_format),
            ("style_preset", request.style_preset),
            ("model", where.sd3_model),
            ("cfg_scale", request.cfg_scale if where.endpoint == "sd3" else None),
        ]
        forms.append([(name, _form_value(value)) for name, value in fields if value is not None])
    return forms


def _form_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _parse_v1(response: UpstreamResponse, *, secret: str) -> tuple[GeneratedImage, ...]:
    if response.content_type.startswith("image/"):
        return (_raw_image(response, secret=secret),)
    payload = _success_json(response, secret=secret)
    artifacts = payload.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts or not all(isinstance(a, dict) for a in artifacts):
        raise _bug(f"{PROVIDER}: upstream returned HTTP {response.status_code} without images in 'artifacts'",
                   secret)
    for artifact in artifacts:
        _check_finish(artifact.get("finishReason"), secret=secret)
    images = []
    for artifact in artifacts:
        data = decode_image_b64(artifact.get("base64"), provider=PROVIDER, secret=secret)
        images.append(_image(data, artifact.get("seed"), secret=secret))
    return tuple(images)


def _parse_v2(response: UpstreamResponse, *, secret: str) -> GeneratedImage:
    if response.content_type.startswith("image/"):
        return _raw_image(response, secret=secret)
    payload = _success_json(response, secret=secret)
    _check_finish(payload.get("finish_reason"), secret=secret)
    data = decode_image_b64(payload.get("image"), provider=PROVIDER, secret=secret)
    return _image(data, payload.get("seed"), secret=secret)


def _raw_image(response: UpstreamResponse, *, secret: str) -> GeneratedImage:
    _check_finish(response.headers.get("finish-reason"), secret=secret)
    seed = response.headers.get("seed", "")
    return _image(response.body, int(seed) if seed.isdigit() else None, secret=secret)


def _image(data: bytes, seed: object, *, secret: str) -> GeneratedImage:
    mime, width, height = check_image(data, provider=PROVIDER, secret=secret)
    return GeneratedImage(
        data=data, mime_type=mime, width=width, height=height,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def _check_finish(reason: object, *, secret: str) -> None:
    if reason is None or reason == "SUCCESS":
        return
    if reason in _FILTERED_FINISH:
        raise provider_error(
            PROVIDER, ErrorKind.CONTENT_POLICY,
            f"{PROVIDER}: the upstream content filter rejected the image (finish reason {reason})",
            secret=secret, status_code=400, code="content_policy_violation",
        )
    raise _bug(f"{PROVIDER}: upstream returned an unknown finish reason {reason!r}", secret)


def _success_json(response: UpstreamResponse, *, secret: str) -> dict[str, Any]:
    payload = json_object(response.body)
    if payload is None:
        what = describe_bad_body(response.body)
        raise _bug(f"{PROVIDER}: upstream returned HTTP {response.status_code} with {what}", secret)
    return payload


def classify_error(response: UpstreamResponse, *, secret: str) -> ProviderError:
    """Classifies a non-2xx Stability answer (v1 ``message`` or v2beta ``errors[]`` bodies)."""
    status = response.status_code
    payload = json_object(response.body) or {}
    name = payload.get("name") if isinstance(payload.get("name"), str) else None
    details: list[str] = []
    if isinstance(payload.get("message"), str):
        details.append(payload["message"])
    errors = payload.get("errors")
    if isinstance(errors, list):
        details.extend(str(e) for e in errors)
    detail = "; ".join(details) or (snippet(response.body) if response.body.strip() else "no error body")
    message = f"{PROVIDER} returned HTTP {status}: " + (f"{name}: {detail}" if name else detail)
    code = name
    retry_after = parse_retry_after(response.headers)
    if name in ("content_moderation", "invalid_prompts", "public_figure") and 400 <= status < 500:
        kind = ErrorKind.CONTENT_POLICY
        code = "content_policy_violation"
    elif status == 401:
        kind = ErrorKind.AUTHENTICATION
    elif status in (402, 403):
        kind = ErrorKind.PERMISSION_DENIED
    elif status == 404:
        kind = ErrorKind.NOT_FOUND
    elif status == 408:
        kind = ErrorKind.TIMEOUT
    elif status == 429:
        kind = ErrorKind.RATE_LIMITED
        retry_after = retry_after if retry_after is not None else RATE_LIMIT_LOCKOUT_SECONDS
    elif status >= 500:
        kind = ErrorKind.UNAVAILABLE
    elif 400 <= status < 500:
        kind = ErrorKind.BAD_REQUEST
    else:
        return provider_error(
            PROVIDER, ErrorKind.UPSTREAM_BUG, f"{PROVIDER} returned unexpected HTTP {status}",
            secret=secret, status_code=502, code="unexpected_status",
        )
    return provider_error(PROVIDER, kind, message, secret=secret, status_code=status, code=code,
                          retry_after=retry_after)


def _parse_size(size: str) -> tuple[int, int]:
    try:
        return parse_size(size)
    except InvalidArgument:
        raise _refuse("size", f"must look like 1024x1024, got {size!r}", "invalid_value") from None


def _refuse(param: str, message: str, code: str) -> ProviderError:
    return ProviderError(
        ErrorKind.BAD_REQUEST, f"{PROVIDER}: parameter {param!r} {message}",
        provider=PROVIDER, status_code=400, code=code, param=param,
    )


def _bug(message: str, secret: str) -> ProviderError:
    return provider_error(
        PROVIDER, ErrorKind.UPSTREAM_BUG, message, secret=secret, status_code=502, code="malformed_response"
    )

