"""Fake Fireworks AI FLUX workflows: `POST /inference/v1/workflows/accounts/fireworks/models/{model}/text_to_image`.

Validates as Fireworks documents: Bearer key (a missing one is the API gateway's `fault` body, a
wrong one OpenAI's envelope); models flux-1-dev-fp8 and flux-1-schnell-fp8 (others 404); `prompt`
required; `aspect_ratio` one of the eleven; `guidance_scale`, `num_inference_steps` (dev 1-50,
schnell 1-12) and `seed` in range; any other field is FastAPI's 422 `detail` list. `Accept:
image/png` or `image/jpeg` answers the raw image with `finish-reason` and `seed` headers; `Accept:
application/json` answers `{"id", "base64": ["data:image/...;base64,..."], "finishReason", "seed"}`.
The content-filter fault is a 200 whose finish reason is `CONTENT_FILTERED` (the image black).

FLUX Kontext (flux-kontext-pro, flux-kontext-max) is a task: `POST .../models/{model}` answers
`{"request_id"}`, `POST .../models/{model}/get_result` with `{"id"}` answers `{"id", "status",
"result"}`: `Pending` for `kontext_pending_polls` polls (None: forever), then `Ready` with
`result.sample`, a URL on this emulator's image store (or on `kontext_sample_origin` when set, to
play a result URL that points elsewhere). The content-filter fault on the submit or a poll ends the
task `Content Moderated`; `kontext_final_status` replaces `Ready` (e.g. `Error`).
"""

from __future__ import annotations

import base64
import binascii
import random
import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from .emulator import AnswerMode, Emulator, Endpoint, bearer_token
from .images import CONTENT_TYPES, ImageFormat, noise_png, solid_image
from .json_rules import BodyError, body_object, choice, integer, number, ratio_size, string
from .recording import RecordedRequest
from .server import Response

_ROUTE = re.compile(r"^/inference/v1/workflows/accounts/fireworks/models/([^/]+)/text_to_image/?$")
_KONTEXT_SUBMIT = re.compile(r"^/inference/v1/workflows/accounts/fireworks/models/(flux-kontext-(?:pro|max))/?$")
_KONTEXT_POLL = re.compile(
    r"^/inference/v1/workflows/accounts/fireworks/models/(flux-kontext-(?:pro|max))/get_result/?$"
)
_KONTEXT_FIELDS = frozenset(
    {
        "prompt", "input_image", "seed", "aspect_ratio", "output_format", "webhook_url", "webhook_secret",
        "prompt_upsampling", "safety_tolerance",
    }
)  # fmt: skip
ASPECT_RATIOS = ("1:1", "21:9", "16:9", "3:2", "5:4", "4:5", "2:3", "9:16", "9:21", "4:3", "3:4")
MAX_STEPS = {"flux-1-dev-fp8": 50, "flux-1-schnell-fp8": 12}
_FIELDS = frozenset({"prompt", "aspect_ratio", "guidance_scale", "num_inference_steps", "seed"})
_MAX_SEED = 4_294_967_295


def _error(status: int, message: str, code: str | None = None) -> Response:
    return Response.json(
        status, {"error": {"object": "error", "type": "invalid_request_error", "message": message, "code": code}}
    )


def _fault(status: int, message: str, errorcode: str) -> Response:
    return Response.json(status, {"fault": {"faultstring": message, "detail": {"errorcode": errorcode}}})


@dataclass
class _Task:
    polls: int
    fmt: ImageFormat
    ratio: str
    moderated: bool


class FireworksEmulator(Emulator):
    """Fireworks AI on `http://127.0.0.1:PORT/inference/v1`."""

    provider: ClassVar[str] = "fireworks-ai"
    _base_path: ClassVar[str] = "/inference/v1"
    _malformed_body: ClassVar[bytes] = b'{"id": "1", "base64": ["data:image/png;base64,iVBORw0KGgo'

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.kontext_pending_polls: int | None = 1
        self.kontext_final_status = "Ready"
        self.kontext_sample_origin: str | None = None
        self._tasks: dict[str, _Task] = {}
        self._tasks_lock = threading.Lock()

    def reset(self) -> None:
        """Clears faults and recorded requests, forgets tasks and restores the Kontext defaults."""
        super().reset()
        self.kontext_pending_polls = 1
        self.kontext_final_status = "Ready"
        self.kontext_sample_origin = None
        with self._tasks_lock:
            self._tasks.clear()

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        if request.method != "POST":
            return None
        if _ROUTE.match(request.path):
            return self._text_to_image
        if _KONTEXT_SUBMIT.match(request.path):
            return self._kontext_submit
        if _KONTEXT_POLL.match(request.path):
            return self._kontext_poll
        return None

    def _auth_failure(self, request: RecordedRequest) -> Response | None:
        if self.api_key is None:
            return None
        token = bearer_token(request.headers)
        if not token:
            return _fault(401, "Invalid ApiKey", "oauth.v2.InvalidApiKey")
        if token != self.api_key:
            return _error(401, "The API key you provided is invalid.", "UNAUTHENTICATED")
        return None

    def _kontext_submit(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        refused = self._auth_failure(request)
        if refused is not None:
            return refused
        try:
            body = body_object(request.body)
            extra = [key for key in body if key not in _KONTEXT_FIELDS]
            if extra:
                detail = [
                    {"loc": ["body", k], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                    for k in extra
                ]
                return Response.json(422, {"detail": detail})
            string(body, "prompt", required=True)
            ratio = choice(body, "aspect_ratio", ASPECT_RATIOS, "1:1")
            integer(body, "seed", 0, _MAX_SEED)
            integer(body, "safety_tolerance", 0, 6)
            fmt = choice(body, "output_format", ("jpeg", "png"), "png")
            if body.get("prompt_upsampling") is not None and not isinstance(body["prompt_upsampling"], bool):
                raise BodyError("'prompt_upsampling' must be a boolean", "prompt_upsampling")
            if "input_image" in body:
                _input_image(body["input_image"])
        except BodyError as error:
            return Response.json(400, {"detail": error.message})
        task_id = secrets.token_hex(12)
        with self._tasks_lock:
            self._tasks[task_id] = _Task(0, "jpeg" if fmt == "jpeg" else "png", ratio, mode.content_filtered)
        return Response.json(200, {"request_id": task_id})

    def _kontext_poll(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        refused = self._auth_failure(request)
        if refused is not None:
            return refused
        task_id = (request.json or {}).get("id")
        with self._tasks_lock:
            task = self._tasks.get(task_id) if isinstance(task_id, str) else None
            if task is not None:
                task.polls += 1
        if task is None:
            return Response.json(200, {"id": task_id, "status": "Task not found", "result": None})
        if mode.content_filtered or task.moderated:
            return Response.json(200, {"id": task_id, "status": "Content Moderated", "result": None})
        pending = self.kontext_pending_polls
        if pending is None or task.polls <= pending:
            return Response.json(200, {"id": task_id, "status": "Pending", "result": None})
        if self.kontext_final_status != "Ready":
            return Response.json(200, {"id": task_id, "status": self.kontext_final_status, "result": None})
        width, height = ratio_size(task.ratio, 1024 * 1024 / 1e6)
        sample = self.image_url(solid_image(width, height, task.fmt), task.fmt)
        if self.kontext_sample_origin is not None:
            sample = sample.replace(self.origin, self.kontext_sample_origin, 1)
        return Response.json(200, {"id": task_id, "status": "Ready", "result": {"sample": sample}})

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, f"Not found: {request.path}", "NOT_FOUND")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return _error(401, "The API key you provided is invalid.", "UNAUTHENTICATED")
        if status == 429:
            return self._rate_limited_response(request)
        return _error(status, f"HTTP {status}", "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(429, "Request rate limit exceeded, please try again later.", "RESOURCE_EXHAUSTED")

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return endpoint(request, AnswerMode(content_filtered=True))

    def _text_to_image(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        match = _ROUTE.match(request.path)
        assert match is not None
        refused = self._auth_failure(request)
        if refused is not None:
            return refused
        model = match[1]
        if model not in MAX_STEPS:
            return _error(404, f"Model not found, inaccessible, and/or not deployed: accounts/fireworks/models/{model}")
        try:
            body = body_object(request.body)
            extra = [key for key in body if key not in _FIELDS]
            if extra:
                detail = [
                    {"loc": ["body", key], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
                    for key in extra
                ]
                return Response.json(422, {"detail": detail})
            string(body, "prompt", required=True)
            ratio = choice(body, "aspect_ratio", ASPECT_RATIOS, "1:1")
            number(body, "guidance_scale", 0, 20)
            integer(body, "num_inference_steps", 1, MAX_STEPS[model])
            seed = integer(body, "seed", 0, _MAX_SEED, 0)
        except BodyError as error:
            return Response.json(400, {"detail": error.message})
        width, height = ratio_size(ratio, 1024 * 1024 / 1e6)
        accept = request.headers.get("accept", "image/png").split(",")[0].strip().lower()
        fmt: ImageFormat = "jpeg" if accept == "image/jpeg" else "png"
        image = noise_png(width, height, mode.image_bytes) if mode.image_bytes else solid_image(width, height, fmt)
        if mode.content_filtered:
            image = solid_image(width, height, fmt)  # Fireworks blacks the image out; the colour does not matter here
        finish = "CONTENT_FILTERED" if mode.content_filtered else "SUCCESS"
        seed = seed or random.randint(1, _MAX_SEED)
        if accept == "application/json":
            uri = f"data:{CONTENT_TYPES[fmt]};base64,{base64.b64encode(image).decode()}"
            return Response.json(
                200, {"id": secrets.token_hex(8), "base64": [uri], "finishReason": finish, "seed": seed}
            )
        headers = (("content-type", CONTENT_TYPES[fmt]), ("finish-reason", finish), ("seed", str(seed)))
        return Response(200, headers, image)


def _input_image(value: object) -> None:
    """Kontext's ``input_image``: an http(s) URL, or the base64 of a PNG, JPEG or WebP."""
    if not isinstance(value, str) or not value:
        raise BodyError("'input_image' must be a string", "input_image")
    if value.startswith(("http://", "https://")):
        return
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BodyError("'input_image' is neither a URL nor base64", "input_image") from None
    if not data.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")) and data[8:12] != b"WEBP":
        raise BodyError("'input_image' is not a PNG, JPEG or WebP image", "input_image")
