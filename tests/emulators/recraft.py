"""Fake Recraft API: `POST /v1/images/generations`, OpenAI-compatible with Recraft's models and rules.

Validates as Recraft documents: a Bearer key (a wrong or missing one is a plain-text 401
`Unauthorized`); models recraftv4_1 (default), recraftv4, their `_pro` variants, recraftv3 and
recraftv2 (others 400); `prompt` at most 10000 characters on V4.x and 1000 on V2/V3; `size` from
the model's list, as `WxH` or as its aspect `w:h`; `style`, `negative_prompt`, `substyle` and
`style_id` only on V2/V3; `n` 1-6; `response_format` `url` (default) or `b64_json`; `controls` an
object; other fields refused. Errors are `{"code", "message"}`. URLs point at the emulator's image
store (Recraft's expire after about a day). The content-filter fault is a 400 `nsfw_content`.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any, ClassVar

from .emulator import AnswerMode, Endpoint, bearer_token
from .generations import GenerationsEmulator
from .images import noise_png, solid_image
from .json_rules import BodyError, body_object, choice, integer, string
from .recording import RecordedRequest
from .server import Response

_V4 = {
    "1:1": "1024x1024", "2:1": "1536x768", "1:2": "768x1536", "3:2": "1280x832", "2:3": "832x1280",
    "4:3": "1216x896", "3:4": "896x1216", "5:4": "1152x896", "4:5": "896x1152", "6:10": "832x1344",
    "14:10": "1280x896", "10:14": "896x1280", "16:9": "1344x768", "9:16": "768x1344",
}  # fmt: skip
_V4_PRO = {
    "1:1": "2048x2048", "2:1": "3072x1536", "1:2": "1536x3072", "3:2": "2560x1664", "2:3": "1664x2560",
    "4:3": "2432x1792", "3:4": "1792x2432", "5:4": "2304x1792", "4:5": "1792x2304", "6:10": "1664x2688",
    "14:10": "2560x1792", "10:14": "1792x2560", "16:9": "2688x1536", "9:16": "1536x2688",
}  # fmt: skip
_V3 = {
    "1:1": "1024x1024", "2:1": "2048x1024", "1:2": "1024x2048", "3:2": "1536x1024", "2:3": "1024x1536",
    "4:3": "1365x1024", "3:4": "1024x1365", "5:4": "1280x1024", "4:5": "1024x1280", "6:10": "1024x1707",
    "10:6": "1707x1024", "14:10": "1434x1024", "10:14": "1024x1434", "16:9": "1820x1024", "9:16": "1024x1820",
}  # fmt: skip
SIZES: dict[str, dict[str, str]] = {
    "recraftv4_1": _V4, "recraftv4": _V4, "recraftv4_1_pro": _V4_PRO, "recraftv4_pro": _V4_PRO,
    "recraftv3": _V3, "recraftv2": _V3,
}  # fmt: skip
STYLED = frozenset({"recraftv3", "recraftv2"})
STYLES = ("any", "realistic_image", "digital_illustration", "vector_illustration", "icon")
_COMMON = frozenset({"prompt", "model", "n", "size", "response_format", "controls", "text_layout"})
_STYLED_FIELDS = _COMMON | {"style", "substyle", "style_id", "negative_prompt"}


def _error(status: int, code: str, message: str) -> Response:
    return Response.json(status, {"code": code, "message": message})


class RecraftEmulator(GenerationsEmulator):
    """Recraft on `http://127.0.0.1:PORT/v1`."""

    provider: ClassVar[str] = "recraft-ai"

    def _not_found(self, request: RecordedRequest) -> Response:
        return _error(404, "not_found", f"{request.method} {request.path} not found")

    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        if status == 401:
            return _unauthorized()
        if status == 429:
            return self._rate_limited_response(request)
        return _error(status, "internal_error" if status >= 500 else "bad_request", f"HTTP {status}")

    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        return _error(429, "rate_limit_exceeded", "Too many requests, slow down.")

    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        return _nsfw()

    def _generations(self, request: RecordedRequest, mode: AnswerMode) -> Response:
        if self.api_key is not None and bearer_token(request.headers) != self.api_key:
            return _unauthorized()
        try:
            body = body_object(request.body)
            model = string(body, "model") or "recraftv4_1"
            sizes = SIZES.get(model)
            if sizes is None:
                raise BodyError(f"unknown model {model}", "model")
            allowed = _STYLED_FIELDS if model in STYLED else _COMMON
            for key in body:
                if key not in allowed:
                    code = "style_not_supported" if key == "style" else "unknown_parameter"
                    raise BodyError(f"{key} is not supported by {model}", code)
            string(body, "prompt", required=True, max_chars=1000 if model in STYLED else 10000)
            n = integer(body, "n", 1, 6, 1)
            size = string(body, "size") or "1:1"
            size = sizes.get(size, size)
            if size not in sizes.values():
                raise BodyError(f"size {size} is not supported by {model}", "invalid_size")
            if model in STYLED:
                choice(body, "style", STYLES, "any")
            if body.get("controls") is not None and not isinstance(body["controls"], dict):
                raise BodyError("controls must be an object", "invalid_controls")
            response_format = choice(body, "response_format", ("url", "b64_json"), "url")
        except BodyError as error:
            return _error(400, error.param or "bad_request", error.message)
        if mode.content_filtered:
            return _nsfw()
        width, height = (int(side) for side in size.split("x"))
        image = noise_png(width, height, mode.image_bytes) if mode.image_bytes else solid_image(width, height, "png")
        assert n is not None
        data: list[dict[str, Any]] = []
        for _ in range(n):
            item: dict[str, Any] = {"image_id": str(uuid.uuid4())}
            if response_format == "url":
                item["url"] = self.image_url(image, "png")
            else:
                item["b64_json"] = base64.b64encode(image).decode()
            data.append(item)
        return Response.json(200, {"created": int(time.time()), "data": data})


def _unauthorized() -> Response:
    return Response(401, (("content-type", "text/plain; charset=utf-8"),), b"Unauthorized")


def _nsfw() -> Response:
    return _error(400, "nsfw_content", "Your prompt was flagged as inappropriate by moderation.")
