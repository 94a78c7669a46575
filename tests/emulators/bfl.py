"""Fake Black Forest Labs FLUX API: submit a task, poll its `polling_url`, fetch the signed `result.sample`.

`POST /v1/{model}` with `x-key` validates the body as BFL's models do (FastAPI 422s naming the
field) and answers `{"id", "polling_url"}`; `GET /v1/get_result?id=` answers `Pending` until the
task's time is up, then `Ready` with `result.sample` on the delivery host (a second port, signed,
expiring). `max_active` reproduces the per-key limit on active tasks (429). Job faults
(`fail_next_jobs`): never finishes, `Request Moderated`, `Content Moderated`, `Error`,
`Task not found`, a polling or result URL elsewhere, an expired result URL.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any, ClassVar

from .async_jobs import ELSEWHERE, AsyncJobEmulator, Job, JobFault
from .emulator import AnswerMode, Endpoint, mask_key
from .images import ImageFormat, solid_image
from .recording import RecordedRequest
from .server import Response

_SUBMIT = re.compile(r"^/v1/([a-z0-9.\-]+)$")
_POLL = "/v1/get_result"
_FLUX_2 = frozenset({"flux-2-pro", "flux-2-max", "flux-2-flex"})
_KONTEXT = frozenset({"flux-kontext-pro", "flux-kontext-max"})
_RATIO_MODELS = frozenset({"flux-pro-1.1-ultra", *_KONTEXT})
MODELS = _FLUX_2 | _RATIO_MODELS | {"flux-pro-1.1"}


def _input_images(count: int) -> set[str]:
    return {"input_image", *(f"input_image_{i}" for i in range(2, count + 1))}


_COMMON = {"prompt", "seed", "output_format", "safety_tolerance", "webhook_url", "webhook_secret"}
_FIELDS: dict[str, set[str]] = {
    "flux-pro-1.1": _COMMON | {"width", "height", "prompt_upsampling", "image_prompt"},
    "flux-pro-1.1-ultra": _COMMON | {"aspect_ratio", "raw", "image_prompt", "image_prompt_strength"},
    # Kontext's multi-reference slots: input_image to input_image_4.
    **{name: _COMMON | {"aspect_ratio", "prompt_upsampling", *_input_images(4)} for name in _KONTEXT},
    **{name: _COMMON | {"width", "height", "prompt_upsampling", *_input_images(8)} for name in _FLUX_2},
}
_FIELDS["flux-2-flex"] |= {"steps", "guidance"}
_RATIOS = re.compile(r"^(\d+):(\d+)$")
ACTIVE_TASKS_MESSAGE = "You have reached the maximum number of active tasks. Wait for some to finish."


class _Invalid(Exception):
    def __init__(self, field: str, message: str, kind: str = "value_error") -> None:
        super().__init__(message)
        self.field = field
        self.kind = kind


def _validation_error(field: str, message: str, kind: str = "value_error") -> Response:
    return Response.json(422, {"detail": [{"loc": ["body", field], "msg": message, "type": kind}]})


class BFLEmulator(AsyncJobEmulator):
    """Black Forest Labs on `http://127.0.0.1:PORT` (polls there too), results on `delivery.origin`."""

    provider: ClassVar[str] = "black-forest-labs"

    def __init__(self, api_key: str | None = None, *, max_active: int | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.max_active = max_active

    def _is_poll(self, request: RecordedRequest) -> bool:
        return request.method == "GET" and request.path == _POLL

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method == "POST" and _SUBMIT.match(request.path):
            return self._submit
        if self._is_poll(request):
            return self._poll
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return Response.json(404, {"detail": "Not Found"})

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        messages = {
            401: "Not authenticated",
            402: "Insufficient credits",
            403: "Forbidden",
            429: ACTIVE_TASKS_MESSAGE,
            500: "Internal Server Error",
            503: "Service Unavailable",
        }
        return Response.json(status, {"detail": messages.get(status, f"HTTP {status}")})

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return self._error_response(429, request)

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        if self._is_poll(request):
            return endpoint(request, AnswerMode())
        return self._submit(request, AnswerMode(), fault=JobFault.REQUEST_MODERATED)

    def _authenticate(self, request: RecordedRequest) -> Response | None:
        key = request.headers.get("x-key")
        if self.api_key is None:
            return None
        if not key:
            return Response.json(403, {"detail": "Not authenticated"})
        if key != self.api_key:
            return Response.json(403, {"detail": f"Invalid API key: {mask_key(key)}"})
        return None

    # -- submit ------------------------------------------------------------------------------------

    def _submit(self, request: RecordedRequest, mode: AnswerMode, fault: JobFault | None = None) -> Response:
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        match = _SUBMIT.match(request.path)
        assert match is not None
        model = match[1]
        if model not in MODELS:
            return Response.json(404, {"detail": "Not Found"})
        if request.json is None:
            return _validation_error("body", "Input should be a valid dictionary or object", "model_attributes_type")
        try:
            _validate(model, request.json)
        except _Invalid as invalid:
            return _validation_error(invalid.field, str(invalid), invalid.kind)
        if self.max_active is not None and self._active_jobs() >= self.max_active:
            return self._error_response(429, request)
        if mode.content_filtered:
            fault = JobFault.CONTENT_MODERATED
        job = self._new_job(model, request.json, fault)
        origin = ELSEWHERE if job.fault is JobFault.POLLING_URL_ELSEWHERE else self.origin
        return Response.json(200, {"id": job.id, "polling_url": f"{origin}{_POLL}?id={job.id}"})

    # -- poll --------------------------------------------------------------------------------------

    def _poll(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        refused = self._authenticate(request)
        if refused is not None:
            return refused
        job_id = request.query.get("id", "")
        job = self._job(job_id)
        if job is None or job.fault is JobFault.TASK_NOT_FOUND:
            return Response.json(200, {"id": job_id, "status": "Task not found", "result": None})
        job.polls += 1
        base: dict[str, Any] = {"id": job.id, "result": None, "progress": None, "details": None}
        if job.fault is JobFault.REQUEST_MODERATED:
            return Response.json(200, {**base, "status": "Request Moderated", "details": {"Moderation Reasons": []}})
        if not job.done:
            return Response.json(200, {**base, "status": "Pending", "progress": round(job.progress, 2)})
        if job.fault is JobFault.CONTENT_MODERATED:
            return Response.json(200, {**base, "status": "Content Moderated", "details": {"Moderation Reasons": []}})
        if job.fault is JobFault.FAILS:
            return Response.json(200, {**base, "status": "Error", "details": {"error": "generation failed"}})
        if job.result is None:
            job.result = self._result(job)
        return Response.json(200, {**base, "status": "Ready", "result": job.result})

    def _result(self, job: Job) -> dict[str, Any]:
        width, height = _output_size(job.model, job.body)
        fmt: ImageFormat = "png" if job.body.get("output_format") == "png" else "jpeg"
        url = self.delivery.publish(solid_image(width, height, fmt), fmt, expired=job.fault is JobFault.RESULT_EXPIRED)
        if job.fault is JobFault.RESULT_URL_ELSEWHERE:
            url = f"{ELSEWHERE}/results/{job.id}.{fmt}"
        now = time.time()
        return {
            "sample": url,
            "prompt": job.body.get("prompt"),
            "seed": job.body.get("seed", 42),
            "start_time": now - job.seconds,
            "end_time": now,
            "duration": job.seconds,
        }


def _validate(model: str, body: dict[str, Any]) -> None:
    """Raises _Invalid for a body the model's endpoint refuses (FastAPI's wording)."""
    for name in body:
        if name not in _FIELDS[model]:
            raise _Invalid(name, "Extra inputs are not permitted", "extra_forbidden")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _Invalid("prompt", "Field required", "missing")
    tolerance = body.get("safety_tolerance", 2)
    top = 5 if model in _FLUX_2 else 6
    if isinstance(tolerance, bool) or not isinstance(tolerance, int) or not 0 <= tolerance <= top:
        raise _Invalid("safety_tolerance", f"Input should be less than or equal to {top}")
    if body.get("output_format", "jpeg") not in ("jpeg", "png"):
        raise _Invalid("output_format", "Input should be 'jpeg' or 'png'", "enum")
    if model in _FLUX_2 or model == "flux-pro-1.1":
        step, low, high = (16, 64, 4096) if model in _FLUX_2 else (32, 256, 1440)
        for side in ("width", "height"):
            value = body.get(side, 1024)
            if not isinstance(value, int) or value % step or not low <= value <= high:
                raise _Invalid(side, f"Input should be a multiple of {step} between {low} and {high}")
        if model in _FLUX_2 and body.get("width", 1024) * body.get("height", 1024) > 4 * 1024 * 1024:
            raise _Invalid("width", "width x height must be at most 4 megapixels")
    if "aspect_ratio" in body:
        match = _RATIOS.match(str(body["aspect_ratio"]))
        if match is None or not 9 / 21 <= int(match[1]) / int(match[2]) <= 21 / 9:
            raise _Invalid("aspect_ratio", "Aspect ratio must be between 21:9 and 9:21")
    for name in sorted(body):
        if name.startswith("input_image"):
            _input_image(name, body[name])
            if name != "input_image" and "input_image" not in body:
                raise _Invalid("input_image", f"Field required when {name} is given", "missing")
    if "steps" in body and not (isinstance(body["steps"], int) and 1 <= body["steps"] <= 50):
        raise _Invalid("steps", "Input should be between 1 and 50")
    if "guidance" in body and not (isinstance(body["guidance"], int | float) and 1.5 <= body["guidance"] <= 10):
        raise _Invalid("guidance", "Input should be between 1.5 and 10")


def _input_image(name: str, value: Any) -> None:
    """An input image is an http(s) URL or the base64 of a PNG, JPEG or WebP (no data: prefix)."""
    if not isinstance(value, str) or not value:
        raise _Invalid(name, "Input should be a valid string", "string_type")
    if value.startswith(("http://", "https://")):
        return
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Invalid(name, "Input should be an image URL or base64-encoded image") from None
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) and data[8:12] != b"WEBP":
        raise _Invalid(name, "Unsupported image format: send PNG, JPEG or WebP")


def _output_size(model: str, body: dict[str, Any]) -> tuple[int, int]:
    if model in _RATIO_MODELS:
        match = _RATIOS.match(str(body.get("aspect_ratio", "1:1")))
        w, h = (int(match[1]), int(match[2])) if match else (1, 1)
        scale = (1024 * 1024 / (w * h)) ** 0.5
        return max(16, round(w * scale / 16) * 16), max(16, round(h * scale / 16) * 16)
    default = (1024, 768) if model == "flux-pro-1.1" else (1024, 1024)
    return int(body.get("width", default[0])), int(body.get("height", default[1]))
