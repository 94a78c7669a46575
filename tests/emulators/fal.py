"""Fake fal queue API: submit to `/{model_id}`, poll `status_url`, read `response_url`, `PUT cancel_url`.

`POST /{model_id}` with `Authorization: Key <key>` validates the model's input (pydantic-style
422s naming the field) and answers `request_id` with `status_url`, `response_url` and
`cancel_url` under the model's app id (the subpath dropped, as fal does). The status is
`IN_QUEUE` (HTTP 202, with a `queue_position` that counts down), `IN_PROGRESS` (202), then
`COMPLETED` (200); the result holds `images[].url` on the delivery host (second port, signed,
expiring). Job faults: never finishes, moderated prompt (422 `content_policy_violation` on the
result), flagged image (`has_nsfw_concepts`, the image black), a failing model (500), status or
result URLs elsewhere, an expired image URL. `cancellations` lists the request ids cancelled.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, ClassVar

from .async_jobs import ELSEWHERE, AsyncJobEmulator, Job, JobFault
from .emulator import AnswerMode, Endpoint, mask_key
from .images import ImageFormat, solid_image
from .recording import RecordedRequest
from .server import Response

_REQUESTS = re.compile(r"^/([a-z0-9-]+/[a-z0-9.\-]+)/requests/([0-9a-f]+)(/status|/cancel)?$")
_PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_KONTEXT = {
    "prompt",
    "seed",
    "guidance_scale",
    "sync_mode",
    "num_images",
    "output_format",
    "safety_tolerance",
    "enhance_prompt",
    "aspect_ratio",
}
_KONTEXT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
_FLUX_COMMON = {"prompt", "image_size", "num_images", "seed", "enable_safety_checker", "output_format", "sync_mode"}
MODELS: dict[str, set[str]] = {
    "fal-ai/flux/dev": _FLUX_COMMON | {"num_inference_steps", "guidance_scale", "acceleration"},
    "fal-ai/flux/schnell": _FLUX_COMMON | {"num_inference_steps", "acceleration"},
    "fal-ai/flux-pro/v1.1": _FLUX_COMMON | {"safety_tolerance"},
    "fal-ai/recraft-v3": {"prompt", "image_size", "style", "colors", "style_id", "enable_safety_checker"},
    # FLUX.1 Kontext: edits of image_url (image_urls on /multi), sized by aspect_ratio.
    **{
        model: _KONTEXT | {"image_urls" if model.endswith("/multi") else "image_url"}
        for model in (
            "fal-ai/flux-pro/kontext",
            "fal-ai/flux-pro/kontext/max",
            "fal-ai/flux-pro/kontext/multi",
            "fal-ai/flux-pro/kontext/max/multi",
        )
    },
}


class _Invalid(Exception):
    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def _detail(status: int, field: str, message: str, kind: str) -> Response:
    return Response.json(status, {"detail": [{"loc": ["body", field], "msg": message, "type": kind}]})


def _app_id(model: str) -> str:
    """The owner and app of a model id: `fal-ai/flux/dev` is queued under `fal-ai/flux`."""
    return "/".join(model.split("/")[:2])


class FalEmulator(AsyncJobEmulator):
    """fal's queue on `http://127.0.0.1:PORT` (status and results there too), images on `delivery.origin`."""

    provider: ClassVar[str] = "fal-ai"

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.cancellations: list[str] = []

    def reset(self) -> None:
        super().reset()
        self.cancellations.clear()

    def _is_poll(self, request: RecordedRequest) -> bool:
        return request.method == "GET" and request.path.endswith("/status")

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        match = _REQUESTS.match(request.path)
        if match is not None:
            if request.method == "GET" and match[3] == "/status":
                return self._status
            if request.method == "GET" and match[3] is None:
                return self._response
            if request.method == "PUT" and match[3] == "/cancel":
                return self._cancel
            return None
        if request.method == "POST" and request.path.lstrip("/") in MODELS:
            return self._submit
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, {"detail": f"Application {request.path.strip('/')!r} not found"})

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        messages = {
            401: "Authentication is required to perform this action.",
            403: "Access denied.",
            429: "Too many requests. Please slow down.",
            500: "Internal server error",
            503: "Service temporarily unavailable",
        }
        return Response.json(status, {"detail": messages.get(status, f"HTTP {status}")})

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return self._error_response(429, request)

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        if request.method == "POST":
            return self._submit(request, AnswerMode(), fault=JobFault.REQUEST_MODERATED)
        return endpoint(request, AnswerMode())

    def _authenticate(self, request: RecordedRequest) -> Response | None:
        if self.api_key is None:
            return None
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme != "Key" or not key:
            return self._error_response(401, request)
        if key != self.api_key:
            return Response.json(401, {"detail": f"Invalid key: {mask_key(key)}"})
        return None

    # -- submit ------------------------------------------------------------------------------------

    def _submit(self, request: RecordedRequest, mode: AnswerMode, fault: JobFault | None = None) -> Response:
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        model = request.path.strip("/")
        if request.json is None:
            return _detail(422, "body", "Input should be a valid dictionary", "dict_type")
        try:
            _validate(model, request.json)
        except _Invalid as invalid:
            return _detail(422, invalid.field, str(invalid), invalid.kind)
        if mode.content_filtered:
            fault = JobFault.CONTENT_MODERATED
        job = self._new_job(model, request.json, fault)
        base = f"{self.origin}/{_app_id(model)}/requests/{job.id}"
        status_base = (
            f"{ELSEWHERE}/{_app_id(model)}/requests/{job.id}" if job.fault is JobFault.POLLING_URL_ELSEWHERE else base
        )
        return Response.json(
            200,
            {
                "request_id": job.id,
                "response_url": base,
                "status_url": f"{status_base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    # -- queue -------------------------------------------------------------------------------------

    def _found(self, request: RecordedRequest) -> tuple[Job | None, Response | None]:
        refused = self._authenticate(request)
        if refused is not None:
            return None, refused
        match = _REQUESTS.match(request.path)
        assert match is not None
        job = self._job(match[2])
        if job is None or _app_id(job.model) != match[1]:
            return None, Response.json(404, {"detail": "Request not found"})
        return job, None

    def _status(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        job, refused = self._found(request)
        if job is None:
            assert refused is not None
            return refused
        job.polls += 1
        response_url = f"{self.origin}/{_app_id(job.model)}/requests/{job.id}"
        if job.done:
            return Response.json(
                200,
                {
                    "status": "COMPLETED",
                    "response_url": response_url,
                    "logs": None,
                    "metrics": {"inference_time": job.seconds},
                },
            )
        if job.progress < 0.5 or job.fault is JobFault.NEVER_FINISHES:
            position = max(0, round((0.5 - job.progress) * 6))
            return Response.json(202, {"status": "IN_QUEUE", "queue_position": position, "response_url": response_url})
        return Response.json(202, {"status": "IN_PROGRESS", "response_url": response_url, "logs": None})

    def _response(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        job, refused = self._found(request)
        if job is None:
            assert refused is not None
            return refused
        if not job.done:
            return Response.json(400, {"detail": "Request is still in progress"})
        if job.fault is JobFault.REQUEST_MODERATED:
            return _detail(
                422,
                "prompt",
                "The content could not be processed because it violates the content policy.",
                "content_policy_violation",
            )
        if job.fault is JobFault.FAILS:
            return Response.json(500, {"detail": "Internal server error"}, headers=(("x-fal-retryable", "true"),))
        if job.result is None:
            job.result = self._result(job)
        return Response.json(200, job.result)

    def _cancel(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        job, refused = self._found(request)
        if job is None:
            assert refused is not None
            return refused
        if job.done:
            return Response.json(400, {"status": "ALREADY_COMPLETED"})
        job.cancelled = True
        self.cancellations.append(job.id)
        return Response.json(202, {"status": "CANCELLATION_REQUESTED"})

    def _result(self, job: Job) -> dict[str, Any]:
        width, height = _output_size(job.body.get("image_size"), job.body.get("aspect_ratio"))
        fmt: ImageFormat = (
            "png" if job.body.get("output_format") == "png" or job.model.endswith("recraft-v3") else "jpeg"
        )
        flagged = job.fault is JobFault.CONTENT_MODERATED
        images = []
        for _ in range(int(job.body.get("num_images", 1))):
            url = self.delivery.publish(
                solid_image(width, height, fmt), fmt, expired=job.fault is JobFault.RESULT_EXPIRED
            )
            if job.fault is JobFault.RESULT_URL_ELSEWHERE:
                url = f"{ELSEWHERE}/files/{job.id}.{fmt}"
            images.append({"url": url, "width": width, "height": height, "content_type": f"image/{fmt}"})
        result: dict[str, Any] = {
            "images": images,
            "prompt": job.body.get("prompt"),
            "timings": {"inference": job.seconds},
        }
        if not job.model.endswith("recraft-v3"):
            result.update(seed=job.body.get("seed", 1234), has_nsfw_concepts=[flagged] * len(images))
        return result


def _validate(model: str, body: dict[str, Any]) -> None:
    for name in body:
        if name not in MODELS[model]:
            raise _Invalid(name, "Extra inputs are not permitted", "extra_forbidden")
    if not isinstance(body.get("prompt"), str) or not body["prompt"]:
        raise _Invalid("prompt", "Field required", "missing")
    if "image_url" in MODELS[model] or "image_urls" in MODELS[model]:
        _kontext_images(model, body)
    size = body.get("image_size", "landscape_4_3")
    if isinstance(size, dict):
        width, height = size.get("width"), size.get("height")
        if (
            not isinstance(width, int)
            or not isinstance(height, int)
            or not (0 < width <= 14142 and 0 < height <= 14142)
        ):
            raise _Invalid("image_size", "width and height must be positive integers up to 14142")
    elif size not in _PRESETS:
        raise _Invalid("image_size", f"Input should be {', '.join(_PRESETS)}", "enum")
    n = body.get("num_images", 1)
    if not isinstance(n, int) or not 1 <= n <= 4:
        raise _Invalid("num_images", "Input should be between 1 and 4")
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        raise _Invalid("output_format", "Input should be 'jpeg' or 'png'", "enum")
    if "safety_tolerance" in body and body["safety_tolerance"] not in ("1", "2", "3", "4", "5", "6"):
        raise _Invalid("safety_tolerance", "Input should be '1', '2', '3', '4', '5' or '6'", "enum")
    steps = body.get("num_inference_steps", 1)
    top = 12 if model.endswith("schnell") else 50
    if not isinstance(steps, int) or not 1 <= steps <= top:
        raise _Invalid("num_inference_steps", f"Input should be between 1 and {top}")


def _kontext_images(model: str, body: dict[str, Any]) -> None:
    """Kontext's input images: required, each an http(s) URL or a base64 data URL of an image."""
    field = "image_urls" if model.endswith("/multi") else "image_url"
    if field not in body:
        raise _Invalid(field, "Field required", "missing")
    urls = body[field] if field == "image_urls" else [body[field]]
    if not isinstance(urls, list) or not urls:
        raise _Invalid(field, "Input should be a non-empty list", "list_type")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("https://", "http://", "data:image/")):
            raise _Invalid(field, "Input should be a URL or a data URI of an image", "url_parsing")
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                decoded = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise _Invalid(field, "Invalid base64 data URI", "value_error") from None
            if not header.endswith(";base64") or not decoded:
                raise _Invalid(field, "Invalid base64 data URI", "value_error")
    if body.get("aspect_ratio", "1:1") not in _KONTEXT_RATIOS:
        raise _Invalid("aspect_ratio", f"Input should be {', '.join(_KONTEXT_RATIOS)}", "enum")
    scale = body.get("guidance_scale", 3.5)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 1 <= scale <= 20:
        raise _Invalid("guidance_scale", "Input should be between 1 and 20")


def _output_size(size: Any, ratio: Any = None) -> tuple[int, int]:
    if isinstance(ratio, str) and ratio in _KONTEXT_RATIOS:
        w, h = (int(side) for side in ratio.split(":"))
        scale = (1024 * 1024 / (w * h)) ** 0.5
        return max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16)
    if isinstance(size, dict):
        return int(size["width"]), int(size["height"])
    return _PRESETS.get(str(size), (1024, 768))
