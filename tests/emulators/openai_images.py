"""Fake OpenAI Images API: `POST /v1/images/generations`, `/edits` and `/variations` with OpenAI's auth,
validation and shapes; generations and gpt-image edits stream (`stream`, `partial_images`) as OpenAI's
server-sent events, with the stream faults of `Fault` (reset, error event, stall, gap) mid-stream."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar

from .emulator import AnswerMode, Emulator, Endpoint, bearer_token, mask_key
from .forms import FormFile
from .images import animated_gif, noise_png, solid_image
from .openai_edit_rules import Upload, parse_edit, parse_variation
from .openai_rules import (
    DEFAULT_MODEL,
    RETIRED_MODELS,
    Generation,
    OpenAIError,
    model_not_found,
    parse_generation,
)
from .recording import RecordedRequest
from .server import Response, StreamEnd, StreamPart

UploadParser = Callable[[dict[str, str], list[tuple[str, FormFile]], frozenset[str]], Upload]
_ERROR_CONTENT_TYPE = "application/json; charset=utf-8"
_GENERATIONS = "/v1/images/generations"
_EDITS = "/v1/images/edits"
_VARIATIONS = "/v1/images/variations"
# Input image tokens a gpt-image edit is billed per image (an approximation; OpenAI counts by tiles).
_INPUT_IMAGE_TOKENS = 388
# Output tokens of a 1024x1024 image per quality (OpenAI pricing docs); scaled by pixel count.
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160, "xhigh": 6240, "max": 8320}
_SQUARE_PIXELS = 1024 * 1024

_DEFAULT_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    403: ("You are not allowed to generate images with this model.", "invalid_request_error", "model_not_available"),
    408: ("Request timed out.", "invalid_request_error", None),
    409: ("The request conflicted with another request.", "invalid_request_error", None),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: (
        "The engine is currently overloaded, please try again later.",
        "service_unavailable_error",
        "server_is_overloaded",
    ),
    504: ("Gateway timeout.", "server_error", None),
}


def error_response(error: OpenAIError) -> Response:
    return Response.json(error.status, error.envelope(), content_type=_ERROR_CONTENT_TYPE)


class OpenAIEmulator(Emulator):
    """OpenAI Images API on `http://127.0.0.1:PORT/v1`."""

    provider: ClassVar[str] = "openai"
    _base_path: ClassVar[str] = "/v1"
    # The models this emulator answers 404 model_not_found for (``retire_models()`` sets OpenAI's).
    retired: frozenset[str] = frozenset()

    def retire_models(self, models: frozenset[str] = RETIRED_MODELS) -> None:
        """Makes ``models`` (OpenAI's shut-down models by default) answer 404 model_not_found."""
        self.retired = frozenset(models)

    def reset(self) -> None:
        """Clears faults, recorded requests and retired models."""
        super().reset()
        self.retired = frozenset()

    def _new_request_id(self) -> str:
        return f"req_{secrets.token_hex(16)}"

    def _response_headers(self) -> list[tuple[str, str]]:
        return [
            ("openai-version", "2020-10-01"),
            ("openai-organization", "user-emulator"),
            ("openai-processing-ms", "5"),
        ]

    def _route(self, request: RecordedRequest) -> Endpoint | None:
        path = request.path.rstrip("/")
        if request.method == "POST" and path == _GENERATIONS:
            return self._generations
        if request.method == "POST" and path == _EDITS:
            return self._edits
        if request.method == "POST" and path == _VARIATIONS:
            return self._variations
        return None

    def _not_found(self, request: RecordedRequest) -> Response:
        return error_response(OpenAIError(404, f"Invalid URL ({request.method} {request.path})"))

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return error_response(_unauthorized(bearer_token(request.headers) or "sk-unknown"))
        if status == 404:
            return error_response(model_not_found(_requested_model(request)))
        if status == 429:
            return self._rate_limited_response(request)
        default = _DEFAULT_ERRORS.get(status)
        if default is None:
            kind = "server_error" if status >= 500 else "invalid_request_error"
            default = (f"The server answered HTTP {status}.", kind, None)
        message, type_, code = default
        return error_response(OpenAIError(status, message, type_, None, code))

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return error_response(
            OpenAIError(
                429,
                "Rate limit exceeded for images per minute in organization org-emulator. Limit: 5/1min. "
                "Current: 6/1min. Please visit https://platform.openai.com/account/rate-limits to learn more.",
                "requests",
                None,
                "rate_limit_exceeded",
            )
        )

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return endpoint(request, AnswerMode(content_filtered=True))

    # -- endpoint ----------------------------------------------------------------------------------

    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        try:
            self._authenticate(request)
            generation = parse_generation(request.body, self.retired)
        except OpenAIError as error:
            return error_response(error)
        if mode.content_filtered:
            return error_response(_safety_rejection(generation, request.request_id))
        image = generated_image(generation, mode)
        if generation.stream:
            return stream_answer(generation, image, mode)
        return Response.json(200, self._images_response(generation, image))

    def _edits(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        return self._upload(request, mode, parse_edit)

    def _variations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        return self._upload(request, mode, parse_variation)

    def _upload(self, request: RecordedRequest, mode: AnswerMode, parse: UploadParser) -> Response:
        try:
            self._authenticate(request)
            if request.form is None:
                raise OpenAIError(
                    400,
                    "Invalid Content-Type header (application/json), expected multipart/form-data.",
                    "invalid_request_error",
                    None,
                    None,
                )
            upload = parse(request.form, request.file_parts, self.retired)
        except OpenAIError as error:
            return error_response(error)
        generation = upload.generation
        if mode.content_filtered:
            return error_response(_safety_rejection(generation, request.request_id))
        image = generated_image(generation, mode)
        if generation.stream:
            # A streamed edit (gpt-image only: dall-e-2's form has no ``stream``): ``image_edit.*`` events.
            usage = _with_input_images(_usage(generation), len(upload.images))
            return stream_answer(generation, image, mode, prefix="image_edit", usage=usage)
        payload = self._images_response(generation, image)
        if "usage" in payload:
            payload["usage"] = _with_input_images(payload["usage"], len(upload.images))
        return Response.json(200, payload)

    def _authenticate(self, request: RecordedRequest) -> None:
        if self.api_key is None:
            return
        token = bearer_token(request.headers)
        if not token:
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if token != self.api_key:
            raise _unauthorized(token)

    def _images_response(self, generation: Generation, image: bytes) -> dict[str, Any]:
        created = int(time.time())
        data: list[dict[str, Any]] = []
        for _ in range(generation.n):
            if generation.response_format == "url":
                item: dict[str, Any] = {"url": self.image_url(image, "png")}
            else:
                item = {"b64_json": base64.b64encode(image).decode("ascii")}
            if generation.model == "dall-e-3":
                item["revised_prompt"] = f"A detailed, high-quality image of: {generation.prompt}"
            data.append(item)
        payload: dict[str, Any] = {"created": created, "data": data}
        if generation.rules.gpt:
            payload.update(_gpt_metadata(generation))
            payload["usage"] = _usage(generation)
            if generation.safety_identifier:
                payload["safety_identifier"] = generation.safety_identifier
            if generation.output_format == "svg":
                payload["svg_usage"] = _svg_usage(generation)
        return payload


def generated_image(generation: Generation, mode: AnswerMode) -> bytes:
    if mode.image_bytes is not None:
        return noise_png(generation.width, generation.height, mode.image_bytes)
    if generation.output_format == "gif":
        return animated_gif(generation.width, generation.height, generation.frame_count, generation.frame_duration_ms)
    return solid_image(
        generation.width, generation.height, generation.output_format, generation.background == "transparent"
    )


def _gpt_metadata(generation: Generation) -> dict[str, Any]:
    return {
        "background": generation.background,
        "output_format": generation.output_format,
        "quality": generation.quality,
        "size": generation.size,
    }


def _svg_usage(generation: Generation) -> dict[str, Any]:
    """The SVG author's own token count (the emulator's author is named ``gpt-5.5`` unless ``svg.model`` says)."""
    input_tokens = max(1, len(generation.prompt) // 4) + 1024
    return {
        "model": generation.svg_model or "gpt-5.5",
        "input_tokens": input_tokens,
        "output_tokens": 900,
        "reasoning_tokens": 300,
        "total_tokens": input_tokens + 900,
    }


def _usage(generation: Generation) -> dict[str, Any]:
    text_tokens = max(1, len(generation.prompt) // 4)
    per_image = _OUTPUT_TOKENS[generation.quality] * generation.width * generation.height // _SQUARE_PIXELS
    output_tokens = per_image * generation.n
    return {
        "input_tokens": text_tokens,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": 0},
        "output_tokens": output_tokens,
        "total_tokens": text_tokens + output_tokens,
        "output_tokens_details": {"image_tokens": output_tokens, "text_tokens": 0},
    }


def _with_input_images(usage: dict[str, Any], count: int) -> dict[str, Any]:
    """An edit's usage: its input images billed as image input tokens."""
    image_tokens = _INPUT_IMAGE_TOKENS * count
    usage["input_tokens"] += image_tokens
    usage["input_tokens_details"]["image_tokens"] = image_tokens
    usage["total_tokens"] += image_tokens
    return usage


_STREAM_ERROR = {
    "type": "error",
    "error": {
        "message": "The server had an error while generating the image. Please retry your request.",
        "type": "server_error",
        "param": None,
        "code": "server_error",
    },
}


def stream_answer(
    generation: Generation,
    image: bytes,
    mode: AnswerMode,
    *,
    prefix: str = "image_generation",
    usage: dict[str, Any] | None = None,
) -> Response:
    """OpenAI's event stream: the partial images, then one completed event per image, each its own
    chunk (`mode.stream_gap_ms` apart, the first `mode.stream_first_ms` after the head); `mode.stream_fault`
    breaks it after the first partial image. `prefix` names the events (`image_generation`, or `image_edit`
    for a streamed edit)."""
    b64 = base64.b64encode(image).decode("ascii")
    created = int(time.time())
    base = {"b64_json": b64, "created_at": created, **_gpt_metadata(generation)}
    events: list[tuple[str, dict[str, Any]]] = []
    for index in range(generation.partial_images):
        kind = f"{prefix}.partial_image"
        events.append((kind, {"type": kind, **base, "partial_image_index": index}))
    if mode.stream_fault is not None and events:
        events = events[:1]
        if mode.stream_fault == "error":
            events.append(("error", _STREAM_ERROR))
    else:
        # Only completed events say the effective safety identifier (OpenAI's event types).
        said = {"safety_identifier": generation.safety_identifier} if generation.safety_identifier else {}
        for _ in range(generation.n):
            kind = f"{prefix}.completed"
            events.append((kind, {"type": kind, **base, "usage": usage or _usage(generation), **said}))
    parts = tuple(
        StreamPart(
            f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode(), mode.stream_gap_ms if i else mode.stream_first_ms
        )
        for i, (kind, data) in enumerate(events)
    )
    end: StreamEnd = (
        "reset" if mode.stream_fault == "reset" else "stall" if mode.stream_fault == "stall" else "complete"
    )
    headers = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))
    return Response(200, headers, parts=parts, end=end)


def _requested_model(request: RecordedRequest) -> str:
    model = (request.json or {}).get("model")
    return model if isinstance(model, str) else DEFAULT_MODEL


def _unauthorized(token: str) -> OpenAIError:
    return OpenAIError(
        401,
        f"Incorrect API key provided: {mask_key(token)}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    )


def _safety_rejection(generation: Generation, request_id: str) -> OpenAIError:
    if generation.rules.gpt:
        return OpenAIError(
            400,
            "Your request was rejected by the safety system. If you believe this is an error, contact "
            f"us at help.openai.com and include the request ID {request_id}. safety_violations=[sexual].",
            "image_generation_user_error",
            None,
            "moderation_blocked",
        )
    return OpenAIError(
        400,
        "Your request was rejected as a result of our safety system. Your prompt may contain text that "
        "is not allowed by our safety system.",
        "invalid_request_error",
        None,
        "content_policy_violation",
    )
